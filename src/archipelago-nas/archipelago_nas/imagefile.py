"""Source files of image imports: validation, format detection, qcow2 -> raw.

`probe(path, allowed)` checks a source on this NAS (absolute path, inside one of
the `[nas] image_dirs` once symlinks are resolved, exists, regular, readable, a raw
or qcow2 image; a qcow2 must pass `qemu-img check`) and returns a Source. The
allow-list matters because nasd usually runs as root and whoever can publish on
the bus could otherwise turn /etc/shadow into a volume and map it somewhere.
`raw_file(src, tmp_dir)` gives a raw file to read: the source itself, or a
sparse raw copy made by `qemu-img convert` (zeros stay holes) that is deleted
afterwards. qemu-img runs through archipelago.process.
"""
import contextlib
import json
import os
import stat
import tempfile
from dataclasses import dataclass

from archipelago import process
from archipelago.errors import InvalidArgument, NotFound, Unavailable

FORMATS = ("raw", "qcow2")
QCOW_MAGIC = b"QFI\xfb"
MAX_PATH = 4096


@dataclass(frozen=True)
class Source:
    path: str
    format: str
    size: int          # virtual size in bytes (what the image volume will hold)


def validate_source(path):
    """The `source` field: an absolute path on the NAS (checked again by probe())."""
    if not isinstance(path, str) or not path or len(path) > MAX_PATH:
        raise InvalidArgument("source must be a file path on the NAS")
    if any(c in path for c in "\0\n\r"):
        raise InvalidArgument("source path contains control characters")
    if not path.startswith("/"):
        raise InvalidArgument(f"source {path!r} must be an absolute path on the NAS")
    return os.path.normpath(path)


def image_dirs(dirs):
    """The validated `[nas] image_dirs`: absolute, normalised, resolved directories."""
    out = []
    for d in dirs:
        if not d.startswith("/") or any(c in d for c in "\0\n\r"):
            raise InvalidArgument(f"[nas] image_dirs: {d!r} is not an absolute directory")
        out.append(os.path.realpath(d))
    return tuple(out)


def check_allowed(path, allowed):
    """`path` with symlinks resolved, if it lies in one of `allowed` (empty: anywhere)."""
    real = os.path.realpath(path)
    if not allowed:
        return real
    for d in allowed:
        if real == d or real.startswith(d.rstrip("/") + "/"):
            return real
    raise InvalidArgument(f"source {path} is outside the image directories of this NAS "
                          f"({', '.join(allowed)}; [nas] image_dirs)")


def _last_line(text):
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else "no message"


def probe(path, allowed=()):
    path = check_allowed(validate_source(path), allowed)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise NotFound(f"source {path} does not exist on this NAS") from None
    except OSError as e:
        raise InvalidArgument(f"source {path}: {e.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        raise InvalidArgument(f"source {path} is not a regular file")
    try:
        with open(path, "rb") as f:
            magic = f.read(4)
    except OSError as e:
        raise InvalidArgument(f"source {path} is not readable: {e.strerror}") from None
    if st.st_size == 0:
        raise InvalidArgument(f"source {path} is empty")
    if process.which("qemu-img") is None:
        if magic == QCOW_MAGIC:
            raise Unavailable("qemu-img is needed to import a qcow2 image (install "
                              "qemu-utils on the NAS)")
        return Source(path, "raw", st.st_size)
    res = process.run(["qemu-img", "info", "--output=json", path], check=False, timeout=120)
    if res.rc != 0:
        raise InvalidArgument(f"source {path} is not a readable disk image: "
                              f"{_last_line(res.stderr or res.stdout)}")
    try:
        info = json.loads(res.stdout)
        fmt, size = info["format"], int(info["virtual-size"])
    except (ValueError, KeyError, TypeError):
        raise InvalidArgument(f"source {path}: qemu-img info gave no format/size") from None
    if fmt not in FORMATS:
        raise InvalidArgument(f"source {path} is a {fmt} image; import raw or qcow2 (convert "
                              f"it with qemu-img convert -O qcow2 first)")
    if fmt == "qcow2":
        _check_qcow2(path)
    if size <= 0:
        raise InvalidArgument(f"source {path} has no data (virtual size {size})")
    return Source(path, fmt, size)


def _check_qcow2(path):
    res = process.run(["qemu-img", "check", "-f", "qcow2", "--output=json", path],
                      check=False, timeout=3600)
    if res.rc in (0, 3):                       # 3: leaked clusters only, data is fine
        return
    detail = ""
    try:
        report = json.loads(res.stdout)
        detail = f"{report.get('corruptions', '?')} corruption(s)"
    except ValueError:
        detail = _last_line(res.stderr or res.stdout)
    raise InvalidArgument(f"source {path} is a corrupt qcow2 image ({detail}); "
                          "repair it with qemu-img check -r, or export it again")


@contextlib.contextmanager
def raw_file(src, tmp_dir):
    """A raw file holding the image of `src` (a Source) for the time of the block."""
    if src.format == "raw":
        yield src.path
        return
    os.makedirs(tmp_dir, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=tmp_dir, prefix="import-") as d:
        out = os.path.join(d, "image.raw")
        res = process.run(["qemu-img", "convert", "-f", src.format, "-O", "raw",
                           "-S", "4k", src.path, out], check=False, timeout=None)
        if res.rc != 0:
            raise InvalidArgument(f"source {src.path}: qemu-img convert failed: "
                                  f"{_last_line(res.stderr or res.stdout)}")
        yield out
