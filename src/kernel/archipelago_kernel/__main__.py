"""`python -m archipelago_kernel map|unmap|showmapped` (vlmc adds the same commands)."""
from .cli import main

main()
