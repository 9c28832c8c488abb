"""A store error in the middle of a metadata operation: the engine that saw it must
agree with the store (a fresh engine on it), and the operation can be retried.

For every operation and every store mutation it makes, the k-th mutation raises
BackendError (a blocker error, not a crash: the engine lives on). Then the same
engine's list/info/reads equal a fresh engine's, and a retry (store healthy again)
ends where an undisturbed run ends."""
import pytest
from test_volume_crashpoints import DyingStore, pattern

from archipelago.errors import ArchipelagoError, BackendError, Exists, NotFound
from archipelago.store.memory import MemoryStore
from archipelago.volume import VolumeEngine

K = 1024
OSIZE = 64 * K
SIZE = 4 * OSIZE


class FailingStore(DyingStore):
    """Raises BackendError at its `die_at`-th mutation (counted from `arm`). With
    `down`, the blocker stays away after that: every call fails (reads, leases too)
    until `disarm`."""

    def __init__(self, die_at, down=False):
        self.down, self.tripped = down, False
        super().__init__(die_at)
        for name in dir(MemoryStore):
            if not name.startswith("_") and name not in self.MUTATIONS and \
                    callable(getattr(self, name)) and name not in ("survivor",):
                setattr(self, name, self._away(getattr(self, name)))

    def _away(self, method):
        def call(*a, **k):
            if self.tripped:
                raise BackendError("injected: blocker away")
            return method(*a, **k)
        return call

    def _dying(self, method):
        def call(*a, **k):
            if self.tripped:
                raise BackendError("injected: blocker away")
            self.count += 1
            if self.count == self.die_at:
                self.tripped = self.down
                raise BackendError("injected blocker failure")
            return method(*a, **k)
        return call

    def arm(self, k, down=False):
        self.count, self.die_at, self.down = 0, k, down

    def disarm(self):
        self.die_at, self.tripped = 0, False


OPS = {
    "snapshot": lambda e: e.snapshot("v", "s1"),
    "clone": lambda e: e.clone("v@s0", "c"),
    "clone-bigger": lambda e: e.clone("v@s0", "c", SIZE * 2),
    "create": lambda e: e.create("n", SIZE, object_size=OSIZE),
    "resize-shrink": lambda e: e.resize("v", OSIZE + 512),
    "resize-grow": lambda e: e.resize("v", SIZE * 64),
    "rename": lambda e: e.rename("v", "w"),
    "remove-snapshot": lambda e: e.remove("v@s0"),
    "remove": lambda e: e.remove("c0"),
    "write-cow": lambda e: e.write("v", OSIZE - 10, pattern(9, 2 * OSIZE)),
}


def setup(held):
    store = FailingStore(0)
    eng = VolumeEngine(store, owner="eng:1", lease_ttl=0, gc_grace=0)
    eng.create("v", SIZE, object_size=OSIZE)
    eng.write("v", 100, pattern(1, 3 * OSIZE))
    eng.snapshot("v", "s0")
    eng.create("c0", SIZE, object_size=OSIZE)
    if held:
        eng.open("v")
        eng.open("c0")
    return store, eng


def durable(eng):
    """What an engine shows: every volume/snapshot with its metadata and bytes."""
    specs = set(SPECS)
    for info in eng.list():
        specs.update([info.name] + [f"{info.name}@{s}" for s in info.snapshots])
    out = {}
    for spec in sorted(specs):
        try:
            i = eng.info(spec, usage=False)
        except NotFound:
            continue
        out[spec] = (i.size, i.origin, tuple(i.snapshots), i.read_only, i.epoch,
                     eng.read(spec, 0, i.size))
    return out


SPECS = ("v", "v@s0", "v@s1", "c", "c0", "n", "w", "w@s0")     # also asked by name


def fresh(store):
    return VolumeEngine(store, owner="fresh:1", lease_ttl=0, gc_grace=0)


def _no_ids(state):
    return {spec: (size, snaps, ro, data)
            for spec, (size, _origin, snaps, ro, _epoch, data) in state.items()}


def mutations(op, held):
    store, eng = setup(held)
    store.arm(0)
    OPS[op](eng)
    return store.count, _no_ids(durable(eng))


CASES = [(op, held, down, k) for op in OPS for held in (False, True)
         for down in (False, True) for k in range(1, mutations(op, held)[0] + 1)]


@pytest.mark.parametrize("op,held,down,k", CASES, ids=[
    f"{o}-{'held' if h else 'free'}-{'down' if d else 'once'}-{k}" for o, h, d, k in CASES])
def test_failure_at_each_mutation(op, held, down, k):
    """`down`: the blocker stays away after the failure (the engine cannot re-read
    the store then), and comes back before the checks."""
    store, eng = setup(held)
    store.arm(k, down)
    with pytest.raises(ArchipelagoError):
        OPS[op](eng)
    store.disarm()
    assert durable(eng) == durable(fresh(store)), "engine diverged from the store"
    try:
        OPS[op](eng)
    except (Exists, NotFound):
        pass          # only if the failed call took effect durably: checked below
    assert durable(eng) == durable(fresh(store))
    assert _no_ids(durable(eng)) == mutations(op, held)[1]
