#!/usr/bin/env python3
"""`.venv/bin/python infra/stack.py up|down|serve|status|env|deploy`: the command line of infra/stacklib/."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: the project's modules (infra.*, chalicelib.*) import from the root
    sys.path.insert(0, str(ROOT))

from infra.stacklib.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
