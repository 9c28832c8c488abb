"""archipelago-nasd: the storage-node daemon of the control plane."""
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
