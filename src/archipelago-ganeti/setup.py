"""Ganeti ExtStorage provider `archipelago`: Ganeti disks as Archipelago volumes."""
import sys
from pathlib import Path

from setuptools import find_packages, setup

# rollversion.py is in src/ in the tree, beside this file in an RPM source tarball.
HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]
from rollversion import roll_version  # noqa: E402

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
