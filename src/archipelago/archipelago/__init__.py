"""Archipelago: thin VM volumes over xseg peers (see docs/ and DESIGN)."""
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("archipelago")
except PackageNotFoundError:  # running from a source tree without install
    __version__ = "0"
