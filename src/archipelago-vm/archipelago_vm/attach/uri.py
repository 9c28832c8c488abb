"""UriAttacher: no kernel device; the VM's disk is the NBD URI itself.

QEMU and libvirt open nbd:// URIs directly (DESIGN §3: "NBD URI always"), so this
needs no privileges and no kernel module. Nothing to attach or detach."""
from .base import Attacher


class UriAttacher(Attacher):
    def __init__(self):
        self.uris = set()

    def attach(self, uri, read_only=False):
        self.uris.add(uri)
        return uri

    def detach(self, device, force=False):
        self.uris.discard(device)

    def list(self):
        return [{"device": u, "uri": u} for u in sorted(self.uris)]

    def reconcile(self, known):
        self.uris.update(uri for _, uri in known)
        return []
