"""Rocks-frontend integration: the command-tree bridge and the start/stop host vm plugins."""
