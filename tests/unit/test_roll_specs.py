"""Spec rendering, source tarballs and %files lists, without running rpmbuild."""
import re
import subprocess
import sys
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
from roll import build_rpms, packages  # noqa: E402


def files_sections(text, roll_name):
    """RPM names the spec's %files sections produce."""
    name = re.search(r"^Name:\s+(\S+)", text, re.M).group(1).replace("%{roll_name}", roll_name)
    out = set()
    for m in re.finditer(r"^%files(?:\s+(-n\s+)?([\w.+-]+))?(?:\s+-f\s+\S+)?\s*$", text, re.M):
        sub = m.group(2)
        if sub in (None, "-f"):
            out.add(name)
        else:
            out.add(sub if m.group(1) else f"{name}-{sub}")
    return out


def test_every_planned_spec_renders_without_leftover_tokens():
    plan = packages.plan()
    roll_name = packages.read_version()["ROLLNAME"]
    for pkg in plan:
        text = build_rpms.render(pkg, plan)
        assert not re.search(r"@[A-Z_]+[:@]", text), pkg.spec
        assert "%{roll_version}" in text and "%{roll_release}" in text
        assert files_sections(text, roll_name) == set(pkg.rpms), pkg.spec


def test_requires_lines_are_rendered():
    plan = packages.plan()
    nas = next((p for p in plan if p.src == "archipelago-nas"), None)
    if nas:
        text = build_rpms.render(nas, plan)
        assert "Requires:       python3-pika" in text
        assert "Requires:       archipelago = %{version}-%{release}" in text


def test_tarball_leaves_build_products_out(tmp_path, monkeypatch):
    src = tmp_path / "src/pkg"
    for f in ("setup.py", "pkg/__init__.py", "build/lib/x.py", "pkg.egg-info/PKG-INFO",
              "pkg/__pycache__/a.pyc", "c/x.o", "systemd/pkgd.service"):
        (src / f).parent.mkdir(parents=True, exist_ok=True)
        (src / f).write_text("x")
    (tmp_path / "src/rollversion.py").write_text("def roll_version(): ...")
    monkeypatch.setattr(packages, "ROOT", tmp_path)
    monkeypatch.setattr(build_rpms, "TOP", tmp_path / "rpm")
    (tmp_path / "rpm/SOURCES").mkdir(parents=True)
    out = build_rpms.tarball("pkg", "9.9")
    names = set(tarfile.open(out).getnames())
    assert {"pkg-9.9/setup.py", "pkg-9.9/pkg/__init__.py",
            "pkg-9.9/systemd/pkgd.service", "pkg-9.9/rollversion.py"} <= names
    assert not any(re.search(r"build/|egg-info|__pycache__|\.o$", n) for n in names)


def test_filelist_dirs_config_and_filters(tmp_path):
    root = tmp_path / "root"
    for f in ("usr/lib/python3.11/site-packages/pkg/__init__.py", "usr/bin/tool",
              "etc/archipelago/x.conf", "etc/rc.d/init.d/svc"):
        (root / f).parent.mkdir(parents=True, exist_ok=True)
        (root / f).write_text("")
    script = ROOT / "roll/rpm/filelist.py"
    out = subprocess.run([sys.executable, script, root], capture_output=True, text=True,
                         check=True).stdout.splitlines()
    assert "%dir /usr/lib/python3.11/site-packages/pkg" in out
    assert "%config(noreplace) /etc/archipelago/x.conf" in out
    assert "/etc/rc.d/init.d/svc" in out and "/usr/bin/tool" in out
    only = subprocess.run([sys.executable, script, root, "--match", "^/usr/bin/"],
                          capture_output=True, text=True, check=True).stdout.split()
    assert only == ["/usr/bin/tool"]


def test_rados_aio_is_a_package_without_setup_py(tmp_path, monkeypatch):
    """src/rados-aio (C + cffi build script, no setup.py) becomes its own arch RPM,
    built from a standalone tarball into a directory of its own, and
    archipelago-rados requires it."""
    if not (ROOT / "src/rados-aio").is_dir():
        return
    assert not (ROOT / "src/rados-aio/setup.py").exists()
    assert "rados-aio" in packages.src_packages()
    plan = packages.plan()
    aio = next(p for p in plan if p.src == "rados-aio")
    assert aio.rpms == ["python3-archipelago-rados-aio"] and not aio.noarch
    arch = next(p for p in plan if p.src == "archipelago")
    assert "python3-archipelago-rados-aio = %{version}-%{release}" in \
        packages.requires_for(arch, "archipelago-rados", plan)
    text = build_rpms.render(aio, plan)
    assert "BuildArch" not in text
    assert "Requires:       python3-archipelago = %{version}-%{release}" in text
    assert "Requires:       librados2" in text
    assert re.search(r"^make all OUT=build STRICT=1 ", text, re.M)
    assert "%{py_sitelib}/archipelago/store/_rados_aio.*.so" in text
    assert "librados2" in packages.DISTRO
    assert packages.DISTRO_CAPS.match("librados.so.2()(64bit)")
    monkeypatch.setattr(build_rpms, "TOP", tmp_path)
    (tmp_path / "SOURCES").mkdir()
    names = set(tarfile.open(build_rpms.tarball("rados-aio", "9.9")).getnames())
    assert {f"rados-aio-9.9/{f}" for f in ("Makefile", "rados_aio.c", "rados_aio.h",
                                            "rados_aio_build.py")} <= names


def test_rados_aio_makefile_out_dir_and_default():
    """`make build` still writes beside store/rados_aio.py; OUT= and STRICT=1 are
    passed through (dry run: nothing is compiled)."""
    d = ROOT / "src/rados-aio"
    if not d.is_dir():
        return

    def dry(*args):
        return subprocess.run(["make", "-s", "-n", "-C", str(d), "force", "PY=python3", *args],
                              capture_output=True, text=True, check=True).stdout
    assert "rados_aio_build.py --out ../archipelago/archipelago/store" in dry()
    assert "--strict" not in dry()
    assert "rados_aio_build.py --out build --strict" in dry("OUT=build", "STRICT=1")
