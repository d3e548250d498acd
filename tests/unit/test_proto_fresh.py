"""The committed generated code must be what `make proto` produces from protos/."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_generated_code_matches_protos(tmp_path: Path) -> None:
    proto_dir = ROOT / "protos/opensweep/v1"
    protos = sorted(str(p.relative_to(ROOT)) for p in proto_dir.glob("*.proto"))
    subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", "-Iprotos", f"--python_out={tmp_path}",
         f"--pyi_out={tmp_path}", f"--grpc_python_out={tmp_path}", *protos],
        cwd=ROOT, check=True,
    )
    generated = sorted(p.name for p in (tmp_path / "opensweep/v1").iterdir())
    assert generated, "protoc produced nothing"
    stale = [
        name for name in generated
        if (tmp_path / "opensweep/v1" / name).read_bytes()
        != (ROOT / "opensweep/v1" / name).read_bytes()
    ]
    assert not stale, f"generated code is stale, run `make proto`: {stale}"
