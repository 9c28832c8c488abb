"""Ganeti ExtStorage provider for Archipelago volumes.

Ganeti runs one executable per action (create, attach, detach, remove, grow,
setinfo, verify, snapshot, open, close) from the provider directory, with a
clean environment holding only its variables (VOL_NAME, VOL_SIZE, EXTP_*, ...).
Every action drives `vlmc` through `archipelago.process` (see `vlmc.py`).
"""
PROVIDER = "archipelago"
