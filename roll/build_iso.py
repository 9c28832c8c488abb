"""Lay out the roll tree under build/roll and make the ISO with genisoimage.

Takes the RPMs of the last `make rpms` (build/rpm/manifest.json).
usage: python3 roll/build_iso.py
"""
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from roll import iso as I
from roll import packages as P


def main():
    v = P.read_version()
    manifest = P.BUILD / "rpm" / "manifest.json"
    if not manifest.exists():
        sys.stderr.write("build_iso: no build/rpm/manifest.json: run `make rpms` first\n")
        return 1
    rpms = json.loads(manifest.read_text())
    tree = P.BUILD / "roll"
    shutil.rmtree(tree, ignore_errors=True)
    base = tree / I.base(v)
    (base / "RedHat" / "RPMS").mkdir(parents=True)
    for path in rpms.values():
        shutil.copy2(path, base / "RedHat" / "RPMS")
    shutil.copytree(P.ROOT / "nodes", base / "nodes")
    shutil.copytree(P.ROOT / "graphs", base / "graphs")
    when = time.gmtime(int(os.environ.get("SOURCE_DATE_EPOCH", time.time())))
    (base / f"roll-{v['ROLLNAME']}.xml").write_text(I.roll_xml(v, when))
    (tree / ".discinfo").write_text(f"{int(time.mktime(when))}\n{v['ROLLNAME']} "
                                    f"{v['VERSION']}\n{I.ARCH}\n1\n")
    out = I.iso_path(v)
    out.unlink(missing_ok=True)
    r = subprocess.run(["genisoimage", "-quiet", "-r", "-J", "-l", "-V", v["ROLLNAME"],
                        "-A", f"{v['ROLLNAME']} {v['VERSION']}-{v['RELEASE']}",
                        "-o", str(out), str(tree)], capture_output=True, text=True)
    if r.returncode:
        sys.stderr.write(f"genisoimage failed: {r.stderr}")
        return 1
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
