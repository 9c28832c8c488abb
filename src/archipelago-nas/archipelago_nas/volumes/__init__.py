"""The NAS's seam to the volume engine and the NBD server: `VolumeService`.

`base.VolumeService` is the interface, `memory.MemoryVolumeService` its in-memory
twin; `make(name, node)` picks the implementation named by [nas] volumes.
"""
from archipelago.errors import ConfigError


def make(name, node):
    if name == "memory":
        from .memory import MemoryVolumeService
        return MemoryVolumeService(nas_host=node.name)
    if name == "engine":
        try:
            from .engine import EngineVolumeService
        except ImportError as e:
            raise ConfigError(f"[nas] volumes = engine needs the volume engine and the NBD "
                              f"server ({e}); use volumes = memory until they are "
                              "installed") from None
        return EngineVolumeService(node)
    raise ConfigError(f"[nas] volumes = {name!r}: unknown volume service")
