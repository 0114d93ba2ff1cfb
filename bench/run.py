#!/usr/bin/env python3
"""Switchyard's benchmark harness: `make bench` runs it with the bench venv's Python after
bench/setup. See bench/README.md, and `bench/run.py --help` for the knobs."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sybench.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
