#!/usr/bin/env python3
"""Entry point: ``python run_sim.py --help``. All logic lives in :mod:`sim.cli`."""

import sys

from sim.cli import main

if __name__ == "__main__":
    sys.exit(main())
