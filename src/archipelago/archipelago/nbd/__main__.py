"""`python -m archipelago.nbd`: run nbdd in the foreground."""
from .daemon import main

main()
