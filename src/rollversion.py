"""The roll's version for every package's setup.py.

One copy for all of them: it sits in src/ in the tree, and roll/build_rpms.py puts
it beside setup.py in each RPM source tarball (where version.mk is not, and
rpmbuild sets ARCHIPELAGO_VERSION instead).
"""
import os
import re
from pathlib import Path


def roll_version():
    """VERSION from the roll's version.mk (ARCHIPELAGO_VERSION overrides, e.g. in rpmbuild)."""
    mk = Path(__file__).resolve().parents[1] / "version.mk"
    if "ARCHIPELAGO_VERSION" in os.environ or not mk.exists():
        return os.environ.get("ARCHIPELAGO_VERSION", "0")
    return re.search(r"^VERSION\s*=\s*(\S+)", mk.read_text(), re.M).group(1)
