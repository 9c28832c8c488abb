"""rocks-command-archipelago: the frontend commands (rocks add host storagemap ...)."""
import sys
from pathlib import Path

from setuptools import find_packages, setup

# rollversion.py is in src/ in the tree, beside this file in an RPM source tarball.
HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]
from rollversion import roll_version  # noqa: E402

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
