# One source of truth for the roll's identity; the Makefile, every src/* package
# (through its setup.py) and the RPM specs read these lines.
ROLLNAME = archipelago
VERSION = 0.1.0
RELEASE = 1
COLOR = SteelBlue
