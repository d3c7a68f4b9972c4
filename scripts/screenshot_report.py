"""Render a run directory's report.html in headless Chromium and save a screenshot.

    .venv/bin/python scripts/screenshot_report.py RUN_DIR [--output docs/report.png] [--height 5000]

Needs Chromium (Debian: apt-get install chromium). Proves the report renders in a real browser
with no network (everything is embedded) and gives the picture checked into docs/.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--output", type=Path, default=Path("docs/report.png"))
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=5000)
    args = parser.parse_args()
    report = (args.run_dir / "report.html").resolve()
    if not report.is_file():
        print(f"{report} not found: run a horizon-zoo command or 'horizon-zoo report {args.run_dir}' first",
              file=sys.stderr)
        return 2
    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if browser is None:
        print("Chromium not found (Debian: apt-get install chromium)", file=sys.stderr)
        return 2
    args.output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as profile:
        cmd = [browser, *FLAGS, f"--user-data-dir={profile}", f"--window-size={args.width},{args.height}",
               f"--screenshot={args.output.resolve()}", report.as_uri()]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    if done.returncode != 0 or not args.output.is_file() or args.output.stat().st_size < 10_000:
        print(f"Chromium failed ({done.returncode}): {done.stderr[-2000:]}", file=sys.stderr)
        return 1
    print(f"wrote {args.output} ({args.output.stat().st_size // 1024} KiB) from {report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
