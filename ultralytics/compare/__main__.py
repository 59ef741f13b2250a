"""`python -m ultralytics.compare ...`: the same command as compare.py."""

import sys

from ultralytics.compare.cli import main

if __name__ == "__main__":
    sys.exit(main())
