# Installed as rocks/archipelago_vm.py; runs under the frontend's Rocks python
# (2.7 on Rocks 7): keep it python 2 and 3 compatible.
# ruff: noqa: UP031
"""What `rocks start host vm` / `rocks stop host vm` do for Archipelago disks.

As the original img-storage roll did: before a VM starts, its volume <vm>-vol
is mapped on the physical host that will run it (sync when both the host and
the VM have img_sync), and the VM's first disk becomes that block device;
after it stops, the volume is unmapped. A VM with no NAS (`rocks set host vm
nas`) is left alone.
"""
import json
import os

DEFAULT_POOL = "default"


def volume_name(vm):
    return "%s-vol" % vm


def truthy(value):
    return str(value).strip().lower() in ("1", "yes", "true", "on", "y")


def host_attr(owner, host, attr):
    try:
        return owner.db.getHostAttr(host, attr)
    except Exception:
        return None


def nas_of(call, vm):
    """(nas, pool) recorded for `vm` by `rocks set host vm nas`, or (None, None)."""
    rows = json.loads(call(["list", "host", "vm", "nas"], [vm],
                           {"output-format": "json"}) or "[]")
    for row in rows if isinstance(rows, list) else [rows]:
        name = row.get("vm-host") or row.get("vm") or row.get("host")
        if name in (None, vm) and row.get("nas") and row.get("nas") != "None":
            return row["nas"], row.get("pool") or row.get("zpool")
    return None, None


def device_from(text):
    """The device path in `add host storagemap` output (JSON rows or a table)."""
    try:
        rows = json.loads(text)
    except ValueError:
        rows = None
    if isinstance(rows, dict):
        rows = [rows]
    for row in rows or []:
        for key in ("device", "bdev", "dev"):
            if str(row.get(key, "")).startswith("/dev/"):
                return row[key]
    words = [w for w in text.split() if w.startswith("/dev/")]
    if not words:
        raise ValueError("no device in storagemap output: %r" % text[:200])
    return words[-1]


def _placement(node):
    defs = getattr(node, "vm_defs", None)
    if not defs or not getattr(defs, "physNode", None) or not getattr(defs, "disks", None):
        return None, None
    return defs.physNode.name, defs.disks[0]


def start(owner, node, call):
    """Map <vm>-vol on the VM's physical host; point the VM's disk at it."""
    phys, disk = _placement(node)
    if not phys:
        return None
    nas, pool = nas_of(call, node.name)
    if not nas:
        return None
    pool = pool or host_attr(owner, nas, "archipelago_pool") or DEFAULT_POOL
    sync = truthy(host_attr(owner, phys, "img_sync")) and \
        truthy(host_attr(owner, node.name, "img_sync"))
    out = call(["add", "host", "storagemap"],
               [nas, pool, volume_name(node.name), phys, "%sG" % disk.size],
               {"img_sync": "true" if sync else "false", "output-format": "json"})
    device = device_from(out)
    disk.vbd_type = "phy"
    disk.prefix = os.path.dirname(device) + "/"
    disk.name = os.path.basename(device)
    return device


def stop(owner, node, call):
    """Unmap <vm>-vol after the VM stopped."""
    nas, _ = nas_of(call, node.name)
    if not nas:
        return None
    call(["remove", "host", "storagemap"], [nas, volume_name(node.name)])
    return nas
