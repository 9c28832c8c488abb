"""libxseg's Python binding `xseg` (cffi, out-of-line API mode)."""
import sys
from pathlib import Path

from setuptools import setup

# rollversion.py is in src/ in the tree, beside this file in an RPM source tarball.
HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]
from rollversion import roll_version  # noqa: E402

setup(
    name="xseg",
    version=roll_version(),
    description="Shared-memory request queues between processes (libxseg) for Python",
    packages=["xseg"],
    python_requires=">=3.11",
    setup_requires=["cffi>=1.15"],
    # The binding is a cffi extension. >=1.17 so the venv gets PyPI's cffi rather
    # than Debian's 1.15, whose emit_c_code imports distutils and breaks on
    # Debian's old jaraco.functools next to a new setuptools (make build).
    install_requires=["cffi>=1.17"],
    cffi_modules=["xseg_build.py:ffibuilder"],
    zip_safe=False,
)
