"""`python -m ultralytics train model=... data=...`: the same as the `yolo` command."""

from ultralytics.cfg import entrypoint

if __name__ == "__main__":
    entrypoint()
