"""Names and headers: the name index (vn.NAME -> ID) and volume headers (vh.ID).

The name index is the only place a name is claimed: `put_if_absent` makes create,
clone and rename race-free across engines. A header is written before its name is
claimed (an unnamed header is an orphan GC may remove), and a name is unclaimed
before its header goes (removal is immediate for users). An index entry whose header
is missing or carries another name is stale (a crash inside rename) and is reclaimed
only when nobody holds the volume's lease.
"""
import json
import logging
import time

from ..errors import Exists, NotFound
from . import format as fmt
from .locks import lease_name

log = logging.getLogger(__name__)


class Catalog:
    def __init__(self, store):
        self.store = store

    def index_id(self, name):
        try:
            return json.loads(self.store.get(fmt.NAME_PREFIX + name))["id"]
        except NotFound:
            return None
        except (ValueError, KeyError, TypeError):
            log.warning("name index of %s is corrupt; treating it as stale", name)
            return None

    def header(self, vid, what):
        try:
            raw = self.store.get(fmt.header_name(vid))
        except NotFound:
            return None
        return fmt.decode_header(raw, what)

    def lookup(self, name):
        """The header of volume/image `name` (fresh from the store), else NotFound."""
        vid = self.index_id(name)
        hdr = self.header(vid, name) if vid else None
        if hdr is None or hdr.get("name") != name:
            raise NotFound(f"volume {name} does not exist")
        return hdr

    def claim(self, name, vid):
        key = fmt.NAME_PREFIX + name
        data = json.dumps({"id": vid}).encode()
        if self.store.put_if_absent(key, data):
            return
        old = self.index_id(name)
        hdr = self.header(old, name) if old else None
        if hdr is not None and hdr.get("name") == name:
            raise Exists(f"volume {name} already exists")
        if old == vid:
            return      # our own stale claim: an earlier attempt failed before undoing it
        cur = self.store.lease_inquire(lease_name(old)) if old else None
        if cur is not None and (not cur.expires or cur.expires > time.time()):
            raise Exists(f"volume {name} is being renamed or created by {cur.owner}")
        log.warning("reclaiming stale name index entry %s", name)
        self.store.replace(key, data)
        if self.index_id(name) != vid:
            raise Exists(f"volume {name} already exists")

    def unclaim(self, name, vid):
        if self.index_id(name) == vid:
            self.store.delete(fmt.NAME_PREFIX + name)

    def names(self):
        n = len(fmt.NAME_PREFIX)
        return sorted(k[n:] for k in self.store.list(fmt.NAME_PREFIX))

    def volumes(self):
        """(name, header) of every live volume and image."""
        for name in self.names():
            try:
                yield name, self.lookup(name)
            except NotFound:
                continue
