"""`make rpms` / `make roll` output, built once per session into a private dir.

- every src/* package yields its RPM(s), versions from version.mk;
- `rpm -qpR` of every RPM resolves within the roll plus the allowed distro list;
- installed into a scratch root (`rpm --root --nodeps --noscripts`), every path
  the units, init scripts, node XML, Ganeti provider and rocks bridge refer to
  is there;
- the native librados aio extension (src/rados-aio) ships as an arch RPM whose .so
  sits next to store/rados_aio.py and imports from the scratch root;
- the ISO passes roll/check_iso.py (isoinfo + rpm -qp).
"""
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from conftest import require

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
from roll import packages  # noqa: E402

SYS_PY = "/usr/bin/python3"
# Paths the distribution or Rocks provide, or the node XML writes at install time.
EXTERNAL = re.compile(r"^(/opt/rocks/(bin|mysql|etc)(/|$)|/root/|/var/411|/var/lock/|/var/run/|"
                      r"/run/archipelago/|/var/log/archipelago/[\w.-]+\.log$|"
                      r"/dev/|/usr/bin/(systemctl|make|env|python3)$|/usr/sbin/rabbitmqctl$|"
                      r"/bin/|/sbin/|/etc/archipelago/(archipelago\.conf|rabbitmq\.secret)$|"
                      r"/tmp/)")


def run(argv, **kw):
    return subprocess.run(argv, capture_output=True, text=True, timeout=600, **kw)


@pytest.fixture(scope="session")
def build():
    require("rpmbuild", "genisoimage", "isoinfo", "rpm")
    d = ROOT / "build" / f"test-roll-{os.getpid()}"
    env = {**os.environ, "ROLL_BUILD": str(d)}
    try:
        r = run([SYS_PY, "roll/build_rpms.py"], cwd=ROOT, env=env)
        assert r.returncode == 0, f"make rpms failed:\n{r.stderr[-6000:]}"
        r = run([SYS_PY, "roll/build_iso.py"], cwd=ROOT, env=env)
        assert r.returncode == 0, r.stderr
        manifest = json.loads((d / "rpm" / "manifest.json").read_text())
        yield {"dir": d, "rpms": manifest, "env": env}
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="session")
def scratch(build):
    root = build["dir"] / "scratch"
    root.mkdir()
    r = run(["rpm", "--root", str(root), "--dbpath", "/var/lib/rpm", "--nodeps",
             "--noscripts", "--ignorearch", "-i", *build["rpms"].values()])
    assert r.returncode == 0, r.stderr
    return root


def qp(rpm, *args):
    return run(["rpm", "-qp", *args, rpm]).stdout.splitlines()


def test_every_src_package_yields_its_rpms(build):
    plan = packages.plan()
    for name in packages.src_packages():
        pkg = next(p for p in plan if p.src == name)
        for rpm in pkg.rpms:
            assert rpm in build["rpms"], f"src/{name}: no {rpm} RPM"
    for own in ("archipelago-frontend", "roll-archipelago-kickstart"):
        assert own in build["rpms"]


def test_versions_come_from_version_mk(build):
    v = packages.read_version()
    for rpm in build["rpms"].values():
        assert qp(rpm, "--qf", "%{VERSION}-%{RELEASE}") == [f"{v['VERSION']}-{v['RELEASE']}"]


def test_requires_resolve_within_roll_and_distro(build):
    provided = set()
    for rpm in build["rpms"].values():
        provided |= {line.split()[0] for line in qp(rpm, "--provides")}
        provided |= {line for line in qp(rpm, "-l")}
    unresolved = []
    for name, rpm in sorted(build["rpms"].items()):
        for req in qp(rpm, "-R"):
            cap = req.split()[0]
            if cap in provided or cap in packages.DISTRO or packages.DISTRO_CAPS.match(cap):
                continue
            unresolved.append(f"{name}: {req}")
    assert not unresolved


def test_internal_requires_pin_the_same_build(build):
    v = packages.read_version()
    ours = set(build["rpms"])
    for name, rpm in build["rpms"].items():
        for req in qp(rpm, "-R"):
            if req.split()[0] in ours:
                assert req.endswith(f"= {v['VERSION']}-{v['RELEASE']}"), (name, req)


def test_split_and_dependencies_as_designed(build):
    reqs = {n: {r.split()[0] for r in qp(p, "-R")} for n, p in build["rpms"].items()}
    if "archipelago-vm" in reqs:
        assert {"fuse3", "nbd", "python3-pika", "python3-daemon"} <= reqs["archipelago-vm"]
    if "python3-archipelago" in reqs:
        assert {"python3-click", "python3-sqlalchemy"} <= reqs["python3-archipelago"]
    if "archipelago-rados" in reqs:
        assert "python3-rados" in reqs["archipelago-rados"]
        if AIO in reqs:
            assert AIO in reqs["archipelago-rados"]
    assert "rabbitmq-server" in reqs["archipelago-frontend"]
    if "python3-xseg" in reqs:
        assert "python3-cffi" in reqs["python3-xseg"]


AIO = "python3-archipelago-rados-aio"


def test_rados_aio_extension_ships_next_to_rados_aio_py(build):
    assert (ROOT / "src/rados-aio").is_dir()
    rpms = build["rpms"]
    assert AIO in rpms, "src/rados-aio: no RPM"
    v = packages.read_version()
    assert qp(rpms[AIO], "--qf", "%{ARCH}") != ["noarch"]
    # the .so is archipelago.store._rados_aio: beside rados_aio.py (archipelago-rados),
    # in the sitelib python3-archipelago installs into, for the target python's ABI
    py = next(p for p in qp(rpms["archipelago-rados"], "-l")
              if p.endswith("/archipelago/store/rados_aio.py"))
    so = py.rsplit("/", 1)[0] + "/_rados_aio" + sysconfig.get_config_var("EXT_SUFFIX")
    assert qp(rpms[AIO], "-l") == [so]
    assert any(p.endswith("/archipelago/store/__init__.py")
               and p.startswith(py.rsplit("/store/", 1)[0])
               for p in qp(rpms["python3-archipelago"], "-l"))
    for other in ("python3-archipelago", "archipelago-rados"):
        assert not [p for p in qp(rpms[other], "-l") if p.endswith(".so")], other
    reqs = {r.split()[0]: r for r in qp(rpms[AIO], "-R")}
    pin = f"= {v['VERSION']}-{v['RELEASE']}"
    assert reqs["python3-archipelago"].endswith(pin)
    assert {"librados2", "python3-cffi", "librados.so.2()(64bit)"} <= set(reqs)
    assert reqs["python(abi)"] == f"python(abi) = {sysconfig.get_python_version()}"
    rados = {r.split()[0]: r for r in qp(rpms["archipelago-rados"], "-R")}
    assert rados.get(AIO, "").endswith(pin), "archipelago-rados must require the extension"


def test_rados_aio_extension_imports_from_the_install(scratch):
    # the system python (the RPMs' target) with only the scratch root's site dirs
    sites = [str(p) for p in sorted(scratch.glob("usr/lib*/python3*/site-packages"))]
    code = ("import sys; sys.path[:0] = sys.argv[1:]; import archipelago.store.rados_aio as m;"
            "print(m.__file__); print(m.available())")
    r = run([SYS_PY, "-s", "-c", code, *sites], cwd=scratch,
            env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"})
    assert r.returncode == 0, r.stderr
    where, ok = r.stdout.split()
    assert where.startswith(str(scratch)) and ok == "True", r.stdout


def exec_paths(unit_text):
    for line in unit_text.splitlines():
        m = re.match(r"^Exec\w+=[-+@!:]*(\S+)", line)
        if m:
            yield m.group(1)


def missing(root, paths):
    return sorted({p for p in paths if not EXTERNAL.match(p) and not
                   (root / p.lstrip("/")).exists() and not (root / p.lstrip("/")).is_symlink()})


def test_unit_and_init_script_paths_exist(scratch):
    units = sorted((scratch / "usr/lib/systemd/system").glob("*.service"))
    assert {"archipelago.service", "archipelago-frontend-setup.service"} <= \
        {u.name for u in units}
    # nbdd is started by `archipelago start`: a unit of its own would fight it for
    # vlmcd's ports and the NBD listen address
    assert "archipelago-nbdd.service" not in {u.name for u in units}
    refs = [p for u in units for p in exec_paths(u.read_text())]
    inits = sorted((scratch / "etc/rc.d/init.d").iterdir())
    assert "archipelago" in {i.name for i in inits}
    assert "archipelago-nbdd" not in {i.name for i in inits}
    for i in inits:
        refs += re.findall(r"^\w+=(/\S+)$", i.read_text(), re.M)
        assert i.stat().st_mode & 0o111
    assert refs and not missing(scratch, refs)


def test_units_users_are_created(build, scratch):
    users = set()
    for u in (scratch / "usr/lib/systemd/system").glob("*.service"):
        users |= set(re.findall(r"^(?:User|Group)=(\S+)", u.read_text(), re.M))
    scripts = "\n".join(qp(build["rpms"]["archipelago"], "--scripts"))
    for user in users - {"root"}:
        assert re.search(rf"useradd .*\b{user}\b", scripts.replace("\\\n", " ")), user
        assert re.search(rf"groupadd .*\b{user}\b", scripts), user


def test_node_xml_references_exist(scratch):
    units = {u.name for u in (scratch / "usr/lib/systemd/system").iterdir()}
    refs = []
    for path in (ROOT / "nodes").glob("*.xml"):
        text = "\n".join("".join(p.itertext()) for p in ET.parse(path).iter("post"))
        for unit in re.findall(r"systemctl enable (\S+)", text):
            if unit != "rabbitmq-server.service":
                assert unit in units, f"{path.name}: {unit}"
        refs += re.findall(r"(?<![\w.])(/(?:usr|etc|opt|var)/[\w./-]+)", text)
    assert not missing(scratch, refs)
    kick = scratch / "export/profile"
    assert {p.name for p in (kick / "nodes").iterdir()} == \
        {p.name for p in (ROOT / "nodes").glob("*.xml")}
    assert (kick / "graphs/default/archipelago.xml").exists()


def test_console_scripts_point_at_installed_modules(scratch):
    site = next((scratch / "usr/lib").glob("python3*/site-packages"))
    sitearch = list((scratch / "usr/lib64").glob("python3*/site-packages"))
    for script in (scratch / "usr/bin").iterdir():
        text = script.read_text(errors="replace")
        assert text.startswith("#!/usr/bin/python3") or text.startswith("#!/bin/sh"), script
        for mod in re.findall(r"^from ([\w.]+) import", text, re.M):
            rel = mod.replace(".", "/")
            assert any((d / f"{rel}.py").exists() or (d / rel / "__init__.py").exists()
                       for d in [site, *sitearch]), f"{script.name}: {mod}"


def test_ganeti_provider_and_rocks_bridge(scratch):
    prov = scratch / "usr/share/ganeti/extstorage/archipelago"
    if prov.exists():
        from archipelago_ganeti.interface import ACTIONS
        for action in ACTIONS:
            assert (prov / action).is_symlink() and (prov / action).resolve().exists()
        script = (prov / "archipelago-extstorage").read_text()
        assert script.startswith("#!/usr/bin/python3")
        vlmc = re.search(r"vlmc_path='([^']+)'", script).group(1)
        assert not missing(scratch, [vlmc])
        assert (prov / "parameters.list").read_text().strip()
    bridge = (scratch / "opt/rocks/lib/python/rocks/archipelago_bridge.py").read_text()
    entry = re.search(r'^ENTRY = "([^"]+)"', bridge, re.M).group(1)
    assert not missing(scratch, [entry])
    for verb in ("start", "stop"):
        assert (scratch / f"opt/rocks/lib/python/rocks/commands/{verb}/host/vm/"
                "plugin_archipelago.py").exists()


def test_roll_iso_structure(build):
    r = run([SYS_PY, "roll/check_iso.py"], cwd=ROOT, env=build["env"])
    assert r.returncode == 0, r.stderr
    v = packages.read_version()
    iso = next(build["dir"].glob("*.disk1.iso"))
    assert iso.name == f"{v['ROLLNAME']}-{v['VERSION']}-{v['RELEASE']}.x86_64.disk1.iso"
    listing = run(["isoinfo", "-R", "-f", "-i", str(iso)]).stdout.split()
    base = f"/{v['ROLLNAME']}/{v['VERSION']}/x86_64"
    assert f"{base}/roll-{v['ROLLNAME']}.xml" in listing
    rpms = [p for p in listing if p.startswith(f"{base}/RedHat/RPMS/")]
    assert len(rpms) == len(build["rpms"])
