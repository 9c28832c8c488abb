"""libxseg's Python binding `xseg` (cffi, out-of-line API mode)."""
import os
import re
from pathlib import Path

from setuptools import setup


def roll_version():
    """VERSION from the roll's version.mk (ARCHIPELAGO_VERSION overrides, e.g. in rpmbuild)."""
    mk = Path(__file__).resolve().parents[2] / "version.mk"
    if "ARCHIPELAGO_VERSION" in os.environ or not mk.exists():
        return os.environ.get("ARCHIPELAGO_VERSION", "0")
    return re.search(r"^VERSION\s*=\s*(\S+)", mk.read_text(), re.M).group(1)


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
