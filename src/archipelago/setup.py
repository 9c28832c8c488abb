"""The common Python package: volumes, peers and the command-line tools."""
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
    name="archipelago",
    version=roll_version(),
    description="Thin volumes with copy-on-write snapshots, clones and dedup over xseg peers",
    packages=find_packages(include=["archipelago", "archipelago.*"]),
    python_requires=">=3.11",
    install_requires=[
        "click>=8",  # every command line
        "xseg",  # the libxseg binding (src/libxseg): every peer and the vlmc client
        "pika>=1.3",  # AMQP client of archipelago.bus (control plane)
        "SQLAlchemy>=2.0",  # daemon state (archipelago.bus.db)
        "python-daemon>=3.0",  # daemon runner (archipelago.bus.daemon)
        # rados (archipelago.store.rados, radosd): Ceph's own binding, Debian's
        # python3-rados -- not on PyPI; the venv sees it via --system-site-packages.
    ],
    entry_points={"console_scripts": [
        "vlmc = archipelago.cli.vlmc:main",
        "archipelago = archipelago.cli.node:main",
        "archipelago-nbdd = archipelago.nbd.daemon:main",
        "xseg = archipelago.cli.xseg:main",
    ]},
)
