"""archipelago-kernel: volumes as kernel block devices (kernel nbd via netlink; FUSE+loop)."""
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
    name="archipelago-kernel",
    version=roll_version(),
    description="Attach archipelago volumes served by the local nbdd as block devices",
    packages=find_packages(include=["archipelago_kernel", "archipelago_kernel.*"]),
    python_requires=">=3.11",
    install_requires=[
        "archipelago",  # config, errors, process runner, the NBD client
        "click>=8",  # map/unmap/showmapped (added to vlmc)
    ],
    # Runtime tools (Debian: libnbd-bin, fuse3, util-linux): nbdfuse, fusermount3, losetup.
    entry_points={"console_scripts": []},
)
