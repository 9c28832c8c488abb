"""Print an rpm %files list for a BUILDROOT: files and symlinks, plus %dir for the
package's own directories (below site-packages, /etc/archipelago, provider dirs),
%config(noreplace) for /etc files. --match/--exclude filter by regex (repeatable).

usage: filelist.py BUILDROOT [--match RE]... [--exclude RE]...
"""
import argparse
import os
import re
from pathlib import Path

# Directories a package owns (created by it, removed with it).
OWNED_DIR = re.compile(r"/site-packages/.+|^/etc/archipelago$|^/usr/libexec/archipelago$|"
                       r"^/var/(lib|log)/archipelago$|"
                       r"^/usr/share/ganeti/extstorage/.+|^/opt/rocks/lib/python/rocks/commands/"
                       r"\w+/host/\w+(/\w+)?$")


def entries(root):
    for dirpath, dirnames, filenames in os.walk(root):
        rel = "/" + os.path.relpath(dirpath, root) if dirpath != str(root) else ""
        if rel and OWNED_DIR.search(rel):
            yield "dir", rel
        for name in sorted(filenames) + sorted(d for d in dirnames
                                               if os.path.islink(os.path.join(dirpath, d))):
            yield "file", f"{rel}/{name}"


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("root")
    p.add_argument("--match", action="append", default=[])
    p.add_argument("--exclude", action="append", default=[])
    a = p.parse_args(argv)
    for kind, path in entries(Path(a.root)):
        if a.match and not any(re.search(m, path) for m in a.match):
            continue
        if any(re.search(x, path) for x in a.exclude):
            continue
        if kind == "dir":
            print(f"%dir {path}")
        elif path.startswith("/etc/") and "/rc.d/" not in path:
            print(f"%config(noreplace) {path}")
        else:
            print(path)


if __name__ == "__main__":
    main()
