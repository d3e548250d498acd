"""Command lines: `controller serve` and the `sweep` client (filled in by later issues)."""

from __future__ import annotations

import argparse


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="controller", description="opensweep controller")
    parser.parse_args(argv)
    parser.print_help()
    return 0


def sweep_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sweep", description="opensweep sweep client")
    parser.parse_args(argv)
    parser.print_help()
    return 0
