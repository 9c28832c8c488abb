"""archipelago-kernel: volumes as kernel block devices (kernel nbd via netlink; FUSE+loop)."""
import sys
from pathlib import Path

from setuptools import find_packages, setup

# rollversion.py is in src/ in the tree, beside this file in an RPM source tarball.
HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]
from rollversion import roll_version  # noqa: E402

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
