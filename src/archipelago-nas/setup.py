"""archipelago-nasd: the storage-node daemon of the control plane."""
import sys
from pathlib import Path

from setuptools import find_packages, setup

# rollversion.py is in src/ in the tree, beside this file in an RPM source tarball.
HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]
from rollversion import roll_version  # noqa: E402

setup(
    name="archipelago-nas",
    version=roll_version(),
    description="Storage-node daemon: creates, exports, maps and unmaps volumes over RabbitMQ",
    packages=find_packages(include=["archipelago_nas", "archipelago_nas.*"]),
    python_requires=">=3.11",
    install_requires=[
        "archipelago",       # bus, config, errors, names, units, volumes
        "click>=8",
        "pika>=1.3",         # AMQP (through archipelago.bus only)
        "SQLAlchemy>=2.0",   # mappings, transitions, attributes
        "python-daemon>=3.0",
    ],
    data_files=[("lib/systemd/system", ["systemd/archipelago-nasd.service"])],
    entry_points={"console_scripts": ["archipelago-nasd = archipelago_nas.daemon:main"]},
)
