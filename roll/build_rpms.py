"""Build the roll's RPMs with rpmbuild in a private _topdir (build/rpm).

Every src/* package with a setup.py becomes at least one RPM (roll/packages.py
says which, and their Requires), and so does a src/* directory the catalog gives
a spec of its own (src/rados-aio: C, no setup.py); the roll's own packages are
always built.
Versions come from version.mk. Prints the RPM paths and writes
build/rpm/manifest.json ({rpm name: path}).

usage: python3 roll/build_rpms.py [--jobs N] [--only SRC ...]
"""
import argparse
import json
import re
import shutil
import subprocess
import sys
import sysconfig
import tarfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from roll import packages as P

TOP = P.BUILD / "rpm"
SKIP = re.compile(r"(^|/)(build|dist|\.pytest_cache|__pycache__|\.ruff_cache|"
                  r"[^/]*\.egg-info)(/|$)|\.(o|so|a|pyc)$")
PYVER = sysconfig.get_python_version()


def tarball(src, version):
    """src/<src> as SOURCES/<src>-<version>.tar.gz (build products left out), with
    src/rollversion.py beside its setup.py."""
    d = P.ROOT / "src" / src
    out = TOP / "SOURCES" / f"{src}-{version}.tar.gz"

    def keep(ti):
        rel = ti.name.split("/", 1)[1] if "/" in ti.name else ""
        return None if rel and SKIP.search(rel) else ti

    with tarfile.open(out, "w:gz") as tf:
        tf.add(d, arcname=f"{src}-{version}", filter=keep)
        # every setup.py imports the one roll_version() (src/rollversion.py)
        tf.add(P.ROOT / "src" / "rollversion.py", arcname=f"{src}-{version}/rollversion.py")
    return out


def render(pkg, pkgs):
    """The spec text for `pkg` with its @TOKENS@ filled in."""
    text = (P.ROLL / "specs" / pkg.spec).read_text()
    text = text.replace("@NAME@", pkg.rpms[0]).replace("@SRC@", pkg.src or "")
    text = text.replace("@SUMMARY@", pkg.summary)

    def req(m):
        lines = [f"Requires:       {r}" for r in P.requires_for(pkg, m.group(1), pkgs)]
        return "\n".join(lines)
    return re.sub(r"@REQUIRES:([\w.+-]+)@", req, text)


def rocks_entry():
    """Absolute path of rocks-command-archipelago's command-line entry point."""
    setup = P.ROOT / "src" / "rocks-command-archipelago" / "setup.py"
    names = re.findall(r"[\"']\s*([\w.-]+)\s*=\s*[\w.]+:\w+", setup.read_text()) \
        if setup.exists() else []
    for pick in ("rocks", "archipelago-rocks", "rocks-archipelago"):
        if pick in names:
            return f"/usr/bin/{pick}"
    return f"/usr/bin/{names[0]}" if names else "/usr/bin/rocks"


def defines(v):
    return {
        "_topdir": str(TOP), "roll_name": v["ROLLNAME"], "roll_version": v["VERSION"],
        "roll_release": v["RELEASE"], "roll_dir": str(P.ROLL), "top_dir": str(P.ROOT),
        "py_sitelib": f"/usr/lib/python{PYVER}/site-packages",
        "py_sitearch": f"/usr/lib64/python{PYVER}/site-packages", "py_ver": PYVER,
        "roll_libdir": "/usr/lib64", "build_python": sys.executable,
        "rocks_entry": rocks_entry(), "_build_id_links": "none",
    }


def build_one(pkg, pkgs, v):
    spec = TOP / "SPECS" / pkg.spec.replace(".spec", f"-{pkg.rpms[0]}.spec")
    spec.write_text(render(pkg, pkgs))
    if pkg.src:
        tarball(pkg.src, v["VERSION"])
    argv = ["rpmbuild", "-bb", "--quiet"]
    for k, val in defines(v).items():
        argv += ["--define", f"{k} {val}"]
    argv.append(str(spec))
    env = {"PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "ARCHIPELAGO_VERSION": v["VERSION"],
           "HOME": str(TOP), "LANG": "C.UTF-8", "PYTHON": "/usr/bin/python3"}
    r = subprocess.run(argv, capture_output=True, text=True, env=env)
    return pkg, r


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--only", nargs="*", help="src/roll-package names to build")
    a = ap.parse_args(argv)
    v = P.read_version()
    pkgs = P.plan()
    todo = [p for p in pkgs if not a.only or (p.src or p.rpms[0]) in a.only]
    if not a.only:
        shutil.rmtree(TOP / "RPMS", ignore_errors=True)
    for d in ("BUILD", "BUILDROOT", "RPMS", "SOURCES", "SPECS", "SRPMS"):
        (TOP / d).mkdir(parents=True, exist_ok=True)
    failed = []
    with ThreadPoolExecutor(max(1, a.jobs)) as ex:
        for pkg, r in ex.map(lambda p: build_one(p, pkgs, v), todo):
            if r.returncode:
                failed.append(pkg)
                sys.stderr.write(f"rpmbuild {pkg.spec} ({pkg.src or 'roll'}) failed:\n"
                                 f"{r.stdout[-3000:]}{r.stderr[-3000:]}\n")
    manifest = {}
    for rpm in sorted((TOP / "RPMS").glob("*/*.rpm")):
        name = subprocess.run(["rpm", "-qp", "--qf", "%{NAME}", str(rpm)],
                              capture_output=True, text=True).stdout.strip()
        manifest[name] = str(rpm)
        print(rpm)
    (TOP / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True))
    missing = [r for r in P.built_rpms(todo) if r not in manifest]
    if failed or missing:
        sys.stderr.write(f"build_rpms: failed: {[p.src or p.rpms[0] for p in failed]}; "
                         f"missing RPMs: {missing}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
