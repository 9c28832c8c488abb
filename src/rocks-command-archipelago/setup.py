"""rocks-command-archipelago: the frontend commands (rocks add host storagemap ...)."""
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
    name="rocks-command-archipelago",
    version=roll_version(),
    description="Rocks-style frontend commands driving the NAS and compute daemons",
    packages=find_packages(include=["rocks_command_archipelago", "rocks_command_archipelago.*"]),
    python_requires=">=3.11",
    install_requires=[
        "archipelago",       # bus, config, errors, names, units, volumes
        "click>=8",
        "pika>=1.3",         # AMQP (through archipelago.bus only)
        "SQLAlchemy>=2.0",   # frontend-side vm -> nas assignments
    ],
    entry_points={"console_scripts": ["rocks = rocks_command_archipelago.cli:main"]},
)
