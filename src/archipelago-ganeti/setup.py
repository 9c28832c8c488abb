"""Ganeti ExtStorage provider `archipelago`: Ganeti disks as Archipelago volumes."""
import os
import re
from pathlib import Path

from setuptools import find_packages, setup


def roll_version():
    """VERSION from the roll's version.mk (ARCHIPELAGO_VERSION overrides, e.g. in rpmbuild)."""
    mk = Path(__file__).resolve().parents[2] / "version.mk"
    if "ARCHIPELAGO_VERSION" in os.environ or not mk.exists():
        return os.environ.get("ARCHIPELAGO_VERSION", "0")
    return re.search(r"^VERSION\s*=\s*(\S+)", mk.read_text(), re.M).group(1)


setup(
    name="archipelago-ganeti",
    version=roll_version(),
    description="Ganeti ExtStorage provider driving vlmc (create/attach/detach/grow/...)",
    packages=find_packages(include=["archipelago_ganeti", "archipelago_ganeti.*"]),
    python_requires=">=3.11",
    # archipelago: the one command runner (archipelago.process), names and units.
    install_requires=["archipelago"],
    entry_points={"console_scripts": [
        "archipelago-extstorage-install = archipelago_ganeti.provider:cli",
    ]},
)
