"""`agent`: runs a sweep's programs on this host (filled in by the agent issue)."""

from __future__ import annotations

import argparse


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="agent", description="opensweep agent")
    parser.parse_args(argv)
    parser.print_help()
    return 0
