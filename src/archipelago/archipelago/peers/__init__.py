"""The node's xseg peers (roles): blockers, mapperd, vlmcd, and their supervisor.

A role is a named section of the node configuration with a `type` (filed, radosd,
memd, mapperd, vlmcd). `python -m archipelago.peers ROLE` runs one role in the
foreground; `archipelago start|stop|status` supervises them through pid files.
"""
