"""The common Python package: volumes, peers and the command-line tools."""
import sys
from pathlib import Path

from setuptools import find_packages, setup

# rollversion.py is in src/ in the tree, beside this file in an RPM source tarball.
HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]
from rollversion import roll_version  # noqa: E402

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
