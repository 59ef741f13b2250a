"""Screenshot report.html in a real browser (headless Chromium) to check how it renders.

    python benchmarks/report_screenshot.py runs/compare/report.html              -> runs/compare/report.png
    python benchmarks/report_screenshot.py report.html --out shot.png --width 1500 --height 4000

Needs Chromium (Debian: `apt-get update && apt-get install -y chromium`). The page is opened from the
file system with the network services of the browser turned off: the report must render from itself alone.
Prints the PNG's path, its size and the fraction of non-white pixels.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_browser() -> str | None:
    """The path of a Chromium-family browser on PATH, or None."""
    return next((p for p in (shutil.which(b) for b in BROWSERS) if p), None)


def run_chromium(args: list[str], timeout: float = 120) -> subprocess.CompletedProcess:
    """Run headless Chromium with `args` (e.g. ["--dump-dom", uri]) in a fresh profile, its network services off;
    returns the finished process (stdout as text). RuntimeError when no Chromium is installed."""
    browser = find_browser()
    if browser is None:
        raise RuntimeError("no Chromium found; install it (Debian: apt-get update && apt-get install -y chromium)")
    with tempfile.TemporaryDirectory() as profile:
        cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
               f"--user-data-dir={profile}", *args]
        env = {**os.environ, "HOME": profile}
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)


def screenshot(page: str | Path, out: str | Path, width: int = 1500, height: int = 3600, timeout: float = 120) -> Path:
    """Render a local HTML file with headless Chromium into a PNG of width x height; returns the PNG path."""
    page, out = Path(page).resolve(), Path(out).resolve()
    if not page.is_file():
        raise FileNotFoundError(f"{page} not found")
    out.unlink(missing_ok=True)
    r = run_chromium([f"--screenshot={out}", f"--window-size={width},{height}", page.as_uri()], timeout)
    if not out.is_file():
        raise RuntimeError(f"Chromium wrote no screenshot (exit {r.returncode}): {r.stderr[-2000:]}")
    return out


def ink(png: str | Path) -> float:
    """Fraction of pixels that are not near-white: 0 for a blank page."""
    import cv2

    im = cv2.imread(str(png), cv2.IMREAD_GRAYSCALE)
    return float((im < 240).mean())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("page", nargs="?", default="runs/compare/report.html")
    p.add_argument("--out", default=None, help="PNG path (default: beside the page, .png)")
    p.add_argument("--width", type=int, default=1500)
    p.add_argument("--height", type=int, default=3600)
    a = p.parse_args()
    out = screenshot(a.page, a.out or Path(a.page).with_suffix(".png"), a.width, a.height)
    import cv2

    h, w = cv2.imread(str(out)).shape[:2]
    print(f"{out}: {w}x{h} px, {ink(out):.1%} non-white")


if __name__ == "__main__":
    main()
