"""`python -m ultralytics train model=... data=...`: the same as the `yolo` command."""

import sys

from ultralytics.cli import entrypoint

if __name__ == "__main__":
    sys.exit(entrypoint())
