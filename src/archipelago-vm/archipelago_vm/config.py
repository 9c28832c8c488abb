"""[vm]: settings of the compute-node daemon."""
from archipelago.config import Option, Section, choice

VM = Section("vm", "Compute-node daemon", [
    Option("attacher", "kernel", choice("uri", "kernel", "memory"),
           "how a mapped volume reaches VMs: 'kernel' (block device via archipelago_kernel), "
           "'uri' (the NBD URI itself, for QEMU/libvirt) or 'memory' (tests)"),
])
