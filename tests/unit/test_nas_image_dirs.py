"""[nas] image_dirs: image imports read only from the configured directories, with
symlinks resolved first, and a bad setting stops the daemon at start."""
import os

import pytest
from controlplane_stub import StubCluster

from archipelago import errors
from archipelago_nas import imagefile

M = 1 << 20


def raw(path, size=4 * M):
    with open(path, "wb") as f:
        f.truncate(size)
        f.write(b"I" * 4096)
    return str(path)


@pytest.fixture
def dirs(tmp_path):
    images, other = tmp_path / "images", tmp_path / "other"
    images.mkdir()
    other.mkdir()
    return images, other


@pytest.fixture
def cl(tmp_path, dirs):
    return StubCluster(tmp_path, nas_extra=f"[nas]\nimage_dirs = {dirs[0]}\n")


def add(cl, name, source):
    return cl.nas_call("add_image", pool="pool", image=name, source=source)


def test_inside_the_image_dirs_is_imported(cl, dirs):
    r = add(cl, "ok", raw(dirs[0] / "a.raw"))
    assert r["status"] == "success", r


def test_outside_is_refused_and_nothing_is_created(cl, dirs):
    r = add(cl, "out", raw(dirs[1] / "b.raw"))
    assert r["status"] == "error" and "outside the image directories" in r["error"], r
    assert cl.nas_call("list_images")["images"] == []


@pytest.mark.parametrize("how", ["symlink", "dotdot", "prefix"])
def test_escapes_are_refused(cl, dirs, how):
    images, other = dirs
    target = raw(other / "secret.raw")
    if how == "symlink":                      # a link inside pointing outside
        src = images / "link.raw"
        os.symlink(target, src)
    elif how == "dotdot":
        src = f"{images}/../other/secret.raw"
    else:                                     # /x/images-evil is not inside /x/images
        evil = images.parent / (images.name + "-evil")
        evil.mkdir()
        src = raw(evil / "c.raw")
    r = add(cl, "esc", str(src))
    assert r["status"] == "error" and "outside the image directories" in r["error"], r


def test_a_link_into_the_image_dirs_is_fine(cl, dirs):
    images, other = dirs
    real = raw(images / "real.raw")
    link = other / "link.raw"
    os.symlink(real, link)
    assert imagefile.check_allowed(str(link), (str(images.resolve()),)) == real
    first = add(cl, "viaimages", real)
    assert first["status"] == "success", first
    assert add(cl, "viaimages", real)["status"] == "success"     # idempotent


def test_unset_allows_any_path(tmp_path):
    assert imagefile.check_allowed(raw(tmp_path / "x.raw"), ()) == str(tmp_path / "x.raw")


@pytest.mark.parametrize("bad", ["images", "./images", "/ok\n/x"])
def test_a_bad_setting_is_an_error(bad):
    with pytest.raises(errors.InvalidArgument, match="image_dirs"):
        imagefile.image_dirs([bad])


def test_an_installed_nas_is_restricted(tmp_path):
    """`rocks report host archipelago role=nas` (what the kickstart writes) sets
    image_dirs, and the daemon reads it back as a restriction."""
    from archipelago import config
    from archipelago_nas.config import NAS
    from rocks_command_archipelago import commands
    from rocks_command_archipelago.client import Client
    from rocks_command_archipelago.commands.report.host.archipelago import IMAGE_DIR

    cl = StubCluster(tmp_path)
    conf = tmp_path / "fe.conf"
    conf.write_text(f"[node]\nname = frontend\nstate_dir = {tmp_path / 'fe'}\n")
    key, cls, argv = commands.find(["report", "host", "archipelago", "nas-0-1", "role=nas"])
    out = cls(Client(str(conf), bus=cl.bus), key).execute(argv)
    body = "\n".join(out.splitlines()[1:-1])          # inside the <file> block
    cfg = config.from_text(body)
    assert imagefile.image_dirs(cfg.section(NAS).image_dirs) == (IMAGE_DIR,)
