"""Build `archipelago.store._rados_aio` (cffi, out-of-line API mode) from rados_aio.c.

`make build` runs this; the extension lands beside store/rados.py (a build product,
not in git). Without librados' headers (Debian: librados-dev) nothing is built and
RadosStore keeps python-rados' own aio: slower, same behaviour.

usage: rados_aio_build.py [--out DIR] [--strict]
  --out DIR   write _rados_aio<EXT_SUFFIX>.so into DIR (default: the source tree's
              archipelago/store; the roll's RPM build passes a directory of its own)
  --strict    fail (exit 1) instead of skipping when librados' headers are missing
"""
import argparse
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

from cffi import FFI

HERE = Path(__file__).resolve().parent
DEST = HERE.parent / "archipelago" / "archipelago" / "store"
HEADER = Path("/usr/include/rados/librados.h")

# cffi parses the declarations of the header itself (it drops the comments), less
# the preprocessor lines it does not take: one list of the functions, in rados_aio.h.
CDEF = "\n".join(line for line in (HERE / "rados_aio.h").read_text().splitlines()
                 if not line.lstrip().startswith("#"))

ffibuilder = FFI()
ffibuilder.cdef(CDEF)
ffibuilder.set_source("_rados_aio", '#include "rados_aio.h"')


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=DEST)
    ap.add_argument("--strict", action="store_true")
    a = ap.parse_args(argv)
    dest = a.out.resolve()
    if not HEADER.exists():
        if a.strict:
            print(f"rados-aio: {HEADER} missing (librados-dev / librados-devel needed)",
                  file=sys.stderr)
            return 1
        print(f"rados-aio: {HEADER} missing (apt-get install librados-dev): not built; "
              "RadosStore uses python-rados' aio", file=sys.stderr)
        return 0
    dest.mkdir(parents=True, exist_ok=True)
    # cffi only writes the C glue; the compiler is called directly because cffi's
    # compile() needs distutils, which breaks on Debian's jaraco next to a new
    # setuptools (see src/libxseg/setup.py).
    so = dest / ("_rados_aio" + sysconfig.get_config_var("EXT_SUFFIX"))
    with tempfile.TemporaryDirectory(prefix="rados-aio-") as tmp:
        glue = Path(tmp) / "_rados_aio.c"
        ffibuilder.emit_c_code(str(glue))
        out = Path(tmp) / so.name
        subprocess.run(["cc", "-shared", "-fPIC", "-O2", "-Wall", "-Werror", "-std=gnu11",
                        "-Wno-unused-function",   # cffi's glue has helpers it may not use
                        f"-I{sysconfig.get_paths()['include']}", f"-I{HERE}", str(glue),
                        str(HERE / "rados_aio.c"), "-lrados", "-lpthread", "-o", str(out)],
                       check=True)
        for old in dest.glob("_rados_aio.*.so"):
            old.unlink()
        shutil.move(str(out), str(so))
    return 0


if __name__ == "__main__":
    sys.exit(main())
