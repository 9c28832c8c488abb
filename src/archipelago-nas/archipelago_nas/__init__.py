"""archipelago-nasd: the storage-node (NAS) daemon of the control plane (DESIGN §4)."""
