"""Mapping records: one JSON file per mapping under NODE.run_dir/kernel/.

    RUN_DIR/kernel/mappings/<id>.json     the Mapping
    RUN_DIR/kernel/work/<id>/             the connector's private files
    RUN_DIR/kernel/lock                   serialises map/unmap on this node

Records are written atomically (rename) after a successful attach and removed
after a successful detach, so `showmapped` after a restart shows exactly what
is attached.
"""
import fcntl
import json
import os
import shutil
import uuid
from contextlib import contextmanager
from pathlib import Path

from .connector import Mapping


class State:
    def __init__(self, run_dir):
        self.root = Path(run_dir) / "kernel"
        self.records = self.root / "mappings"
        self.work = self.root / "work"

    def ensure(self):
        self.records.mkdir(parents=True, exist_ok=True)
        self.work.mkdir(parents=True, exist_ok=True)

    @contextmanager
    def locked(self):
        """An exclusive lock on this node's mapping table."""
        self.ensure()
        with open(self.root / "lock", "w") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield self
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    @staticmethod
    def new_id():
        return uuid.uuid4().hex[:16]

    def work_dir(self, mid):
        d = self.work / mid
        d.mkdir(parents=True, exist_ok=True)
        return d

    def save(self, mapping):
        self.ensure()
        tmp = self.records / f".{mapping.id}.tmp"
        tmp.write_text(json.dumps(mapping.to_dict(), indent=1))
        os.replace(tmp, self.records / f"{mapping.id}.json")

    def remove(self, mapping):
        (self.records / f"{mapping.id}.json").unlink(missing_ok=True)
        shutil.rmtree(self.work / mapping.id, ignore_errors=True)

    def all(self):
        if not self.records.is_dir():
            return []
        out = []
        for p in sorted(self.records.glob("*.json")):
            try:
                out.append(Mapping.from_dict(json.loads(p.read_text())))
            except (OSError, ValueError, TypeError):
                continue
        return sorted(out, key=lambda m: m.created)

    def find(self, what):
        """Mappings whose device, volume or id is `what`."""
        real = os.path.realpath(what) if what.startswith("/") else None
        return [m for m in self.all()
                if what in (m.id, m.volume, m.device) or (real and real == m.device)]
