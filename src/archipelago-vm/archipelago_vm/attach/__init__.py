"""The compute node's seam to block-device attachment: `Attacher`.

`base.Attacher` is the interface; `memory.MemoryAttacher` its twin; `uri.UriAttacher`
hands the NBD URI itself to the hypervisor (QEMU/libvirt open it directly);
`kernel.KernelAttacher` makes a block device through archipelago_kernel.
"""
from archipelago.errors import ConfigError


def make(name, node):
    if name == "memory":
        from .memory import MemoryAttacher
        return MemoryAttacher()
    if name == "uri":
        from .uri import UriAttacher
        return UriAttacher()
    if name == "kernel":
        try:
            from .kernel import KernelAttacher
        except ImportError as e:
            raise ConfigError(f"[vm] attacher = kernel needs archipelago_kernel ({e}); "
                              "use attacher = uri until it is installed") from None
        return KernelAttacher(node)
    raise ConfigError(f"[vm] attacher = {name!r}: unknown attacher")
