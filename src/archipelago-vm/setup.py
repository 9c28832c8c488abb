"""archipelago-vmd: the compute-node daemon of the control plane."""
import sys
from pathlib import Path

from setuptools import find_packages, setup

# rollversion.py is in src/ in the tree, beside this file in an RPM source tarball.
HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]
from rollversion import roll_version  # noqa: E402

setup(
    name="archipelago-vm",
    version=roll_version(),
    description="Compute-node daemon: attaches and detaches volumes as asked over RabbitMQ",
    packages=find_packages(include=["archipelago_vm", "archipelago_vm.*"]),
    python_requires=">=3.11",
    install_requires=[
        "archipelago",       # bus, config, errors, names, units, volumes
        "click>=8",
        "pika>=1.3",         # AMQP (through archipelago.bus only)
        "SQLAlchemy>=2.0",   # attached devices, idempotency log
        "python-daemon>=3.0",
    ],
    data_files=[("lib/systemd/system", ["systemd/archipelago-vmd.service"])],
    entry_points={"console_scripts": ["archipelago-vmd = archipelago_vm.daemon:main"]},
)
