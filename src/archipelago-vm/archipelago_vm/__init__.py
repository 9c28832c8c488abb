"""archipelago-vmd: the compute-node (VM host) daemon of the control plane (DESIGN §4)."""
