#!/usr/bin/env python3
"""Run the benchmarks: every bench/bench_*.py in name order, or those named.

    make bench                       # all of them
    .venv/bin/python bench/run.py xseg nbd   # bench_xseg.py and bench_nbd.py

Each benchmark prints its own figures and ratios; this runner prints a header per
benchmark, its wall time, and a summary of which ones failed. Benchmarks are never
part of the test suite (no timing assertions there).
"""
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv):
    wanted = set(argv)
    scripts = sorted(p for p in HERE.glob("bench_*.py")
                     if not wanted or p.stem.removeprefix("bench_") in wanted)
    if not scripts:
        print(f"no benchmarks match {sorted(wanted)}", file=sys.stderr)
        return 2
    failed = []
    for script in scripts:
        print(f"\n=== {script.stem} ===", flush=True)
        t0 = time.monotonic()
        rc = subprocess.call([sys.executable, str(script)], cwd=HERE.parent)
        print(f"--- {script.stem}: {'ok' if rc == 0 else f'FAILED (exit {rc})'} "
              f"in {time.monotonic() - t0:.1f}s", flush=True)
        if rc:
            failed.append(script.stem)
    print(f"\n{len(scripts) - len(failed)} benchmarks ok, {len(failed)} failed"
          + (f": {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
