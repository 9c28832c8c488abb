"""The roll's package catalog: which RPMs each src/* package becomes, and their Requires.

One place for the build (build_rpms.py), the ISO (build_iso.py) and the tests.
Packages follow the original Archipelago split where it applies: libxseg0 and
python-xseg, the common python package, the peers and tools (`archipelago`),
the RADOS blocker, the kernel-attach package, the NAS and VM daemons,
rocks-command-archipelago and archipelago-ganeti, plus the native librados aio
extension (src/rados-aio, no setup.py: a catalog entry with its own spec makes a
src/* directory a package). A src/* directory with a setup.py that is not listed
here still becomes an RPM, from the generic Python template.
"""
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ROLL = ROOT / "roll"
# Where builds go (a test session uses a private directory under build/).
BUILD = Path(os.environ.get("ROLL_BUILD", ROOT / "build"))

PY = "python3 >= 3.11"
SAME = "= %{version}-%{release}"   # roll-internal Requires pin the exact build


@dataclass
class Package:
    """One src/* package (or a roll-owned one when src is None)."""

    src: str | None
    spec: str                       # template under roll/specs/
    rpms: list                      # RPM names the spec produces (main first)
    summary: str = ""
    requires: dict = field(default_factory=dict)   # rpm name -> [capabilities]
    noarch: bool = True


CATALOG = [
    Package("libxseg", "libxseg.spec", ["libxseg0", "libxseg-devel", "python3-xseg"],
            "xseg shared-memory IPC",
            {"python3-xseg": [PY, "python3-cffi"]}, noarch=False),
    Package("archipelago", "archipelago.spec",
            ["python3-archipelago", "archipelago", "archipelago-rados"],
            "Archipelago volumes, peers and tools",
            {"python3-archipelago": [PY, "python3-xseg", "python3-click", "python3-pika",
                                     "python3-sqlalchemy", "python3-daemon"],
             "archipelago": ["python3-archipelago", "libxseg0"],
             "archipelago-rados": ["python3-archipelago", "python3-rados",
                                   "python3-archipelago-rados-aio"]}),
    # C (cffi API mode) built in %build; the .so goes into python3-archipelago's
    # archipelago/store/ (it is archipelago.store._rados_aio). Built for one python ABI.
    Package("rados-aio", "rados-aio.spec", ["python3-archipelago-rados-aio"],
            "Native librados aio data path of the Archipelago RADOS blocker",
            {"python3-archipelago-rados-aio": ["python(abi) = %{py_ver}",
                                               "python3-archipelago", "python3-cffi",
                                               "librados2"]}, noarch=False),
    Package("kernel", "python.spec", ["archipelago-kernel"],
            "Block devices for Archipelago volumes (kernel nbd, FUSE + loop)",
            {"archipelago-kernel": [PY, "python3-archipelago", "nbd", "nbdfuse", "fuse3",
                                    "util-linux", "kmod"]}),
    Package("archipelago-nas", "python.spec", ["archipelago-nas"],
            "Archipelago storage-node (NAS) daemon",
            {"archipelago-nas": [PY, "python3-archipelago", "archipelago", "python3-pika",
                                 "python3-sqlalchemy", "python3-daemon"]}),
    Package("archipelago-vm", "python.spec", ["archipelago-vm"],
            "Archipelago compute-node (VM host) daemon",
            {"archipelago-vm": [PY, "python3-archipelago", "archipelago", "archipelago-kernel",
                                "python3-pika", "python3-sqlalchemy", "python3-daemon",
                                "fuse3", "nbd"]}),
    Package("rocks-command-archipelago", "python.spec", ["rocks-command-archipelago"],
            "rocks commands for Archipelago storage maps",
            {"rocks-command-archipelago": [PY, "python3-archipelago", "python3-pika",
                                           "python3-sqlalchemy", "python3-click"]}),
    Package("archipelago-ganeti", "python.spec", ["archipelago-ganeti"],
            "Ganeti ExtStorage provider for Archipelago volumes",
            {"archipelago-ganeti": [PY, "python3-archipelago", "archipelago",
                                    "archipelago-kernel"]}),
    # Roll-owned packages (always built).
    Package(None, "archipelago-frontend.spec", ["archipelago-frontend"],
            "Archipelago on the Rocks frontend: broker, rocks command tree, VM plugins",
            {"archipelago-frontend": ["rocks-command-archipelago", "rabbitmq-server",
                                      "python3-sqlalchemy"]}),
    Package(None, "roll-archipelago-kickstart.spec", ["roll-archipelago-kickstart"],
            "Rocks node and graph XML of the archipelago roll"),
]

# Distribution packages the roll's RPMs may require (RHEL/CentOS names).
DISTRO = {
    "python3", "python3-cffi", "python3-click", "python3-pika", "python3-sqlalchemy",
    "python3-daemon", "python3-rados", "rabbitmq-server", "fuse3", "nbd", "nbdfuse",
    "util-linux", "kmod", "systemd", "bash", "coreutils", "chkconfig", "glibc",
    "shadow-utils", "librados2",
}
# Capabilities rpm itself adds (interpreters, libc sonames, rpmlib features).
# librados.so.2 is librados2's soname (the rados-aio extension links it); python(abi)
# is what the target python3 package provides for its version.
DISTRO_CAPS = re.compile(r"^(rpmlib\(.*\)|rtld\(GNU_HASH\)|/bin/sh|/bin/bash|/usr/bin/python3|"
                         r"/usr/bin/env|python\(abi\)|"
                         r"(libc|libm|libdl|libpthread|librt|librados|ld-linux[-\w.]*)"
                         r"\.so[.\d]*(\(.*\))*)$")


def read_version(mk=ROOT / "version.mk"):
    """ROLLNAME, VERSION, RELEASE, COLOR from version.mk as a dict."""
    vals = dict(re.findall(r"^(\w+)\s*=\s*(\S+)", mk.read_text(), re.M))
    return {k: vals[k] for k in ("ROLLNAME", "VERSION", "RELEASE", "COLOR") if k in vals}


def src_packages(root=ROOT):
    """Names of the src/* directories that are packages: those with a setup.py, and
    those the catalog builds with a spec of their own (C without setup.py)."""
    found = {p.parent.name for p in (root / "src").glob("*/setup.py")}
    found |= {p.src for p in CATALOG if p.src and p.spec != "python.spec"
              and (root / "src" / p.src).is_dir()}
    return sorted(found)


def plan(root=ROOT):
    """The packages to build now: every existing src/* package plus the roll's own."""
    present = set(src_packages(root))
    known = {p.src for p in CATALOG if p.src}
    out = [p for p in CATALOG if p.src is None or p.src in present]
    for name in sorted(present - known):
        out.append(Package(name, "python.spec", [name], f"{name} (Archipelago roll)",
                           {name: [PY, "python3-archipelago"]}))
    return out


def built_rpms(pkgs):
    return [r for p in pkgs for r in p.rpms]


def requires_for(pkg, rpm, pkgs):
    """Requires lines for `rpm`: roll-internal ones pinned, ones not built now dropped."""
    internal = set(r for p in CATALOG for r in p.rpms)
    built = set(built_rpms(pkgs))
    out = []
    for cap in pkg.requires.get(rpm, []):
        name = cap.split()[0]
        if name in internal:
            if name in built:
                out.append(f"{name} {SAME}")
        else:
            out.append(cap)
    return out


def all_rpm_names():
    """Every RPM the catalog can produce (for node XML checks)."""
    return {r: p.src for p in CATALOG for r in p.rpms}
