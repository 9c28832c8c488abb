"""`python -m archipelago_ganeti DIR`: write the provider directory."""
import sys

from .provider import cli

sys.exit(cli())
