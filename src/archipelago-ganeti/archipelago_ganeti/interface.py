"""The provider's side of ganeti-extstorage-interface(7): actions and parameters.

Plain data (no imports), so the provider directory can be laid out at package
build time without the rest of Archipelago installed.
"""
# The provider's parameters: name -> description (parameters.list is written from it).
PARAMETERS = {
    "origin": "Snapshot VOLUME@SNAP or hashed image to clone the new volume from (O(1))",
    "object_size": "Object size of a new volume, a power of two 64K..32M (default 4M)",
}

# Actions Ganeti may run; the first seven are required by the interface.
ACTIONS = ("create", "attach", "detach", "remove", "grow", "setinfo", "verify",
           "snapshot", "open", "close")
