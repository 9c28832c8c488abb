"""Crash at every store mutation, deterministically: a scripted sequence of volume
operations runs over a store that "dies" (raises) before its k-th mutation, for every
k. A new engine on what the store holds then finds every completed operation, the
interrupted one either done or not (old-or-new per byte for a write), every map
loadable, and the store usable (more writes, snapshots and a GC)."""
import pytest

from archipelago.store.memory import MemoryStore
from archipelago.volume import VolumeEngine

K = 1024
OSIZE = 64 * K
SIZE = 8 * OSIZE


class Crash(BaseException):
    """The simulated death (BaseException: nothing in the engine may swallow it)."""


class DyingStore(MemoryStore):
    MUTATIONS = ("write", "delete", "copy", "replace", "put_if_absent")

    def __init__(self, die_at):
        super().__init__()
        self.die_at, self.count = die_at, 0
        for name in self.MUTATIONS:
            setattr(self, name, self._dying(getattr(self, name)))

    def _dying(self, method):
        def call(*a, **k):
            self.count += 1
            if self.count == self.die_at:
                raise Crash()
            return method(*a, **k)
        return call

    def survivor(self):
        """The same contents, no more dying (what a restarted process finds)."""
        s = MemoryStore()
        s._objs, s._leases = self._objs, self._leases
        return s


def pattern(v, n):
    return bytes([v]) * n


SCRIPT = [
    ("create", "v", SIZE),
    ("write", "v", 100, pattern(1, 3 * OSIZE)),
    ("snapshot", "v", "s1"),
    ("write", "v", OSIZE - 10, pattern(2, 20)),           # copy-up of two objects
    ("write", "v", 5 * OSIZE, pattern(3, OSIZE)),
    ("clone", "v@s1", "c"),
    ("write", "c", 0, pattern(4, 5000)),
    ("snapshot", "c", "x"),
    ("write", "c", 1000, pattern(5, 100)),
    ("resize", "v", 3 * OSIZE + 512),
    ("resize", "v", SIZE * 2),
    ("write", "v", SIZE + 7, pattern(6, 900)),
    ("hash", "v@s1"),
    ("remove", "v@s1"),
    ("rename", "c", "d"),
    ("clone", "d@x", "e", SIZE * 3),
    ("write", "e", SIZE * 2, pattern(8, 3000)),
    ("gc",),
    ("write", "d", 3 * OSIZE, pattern(7, 2 * OSIZE)),
    ("write_batch", "d", [(10, pattern(9, 5000)), (OSIZE + 4096, pattern(10, 8192)),
                          (5 * OSIZE - 100, pattern(11, 300))]),
    ("remove", "e"),
    ("gc",),
]


def run(eng, op):
    kind, *args = op
    if kind == "write":
        eng.write(args[0], args[1], args[2])
    elif kind == "write_batch":
        eng.write_batch(args[0], args[1])
    elif kind == "create":
        eng.create(args[0], args[1], object_size=OSIZE)
    elif kind == "snapshot":
        eng.snapshot(*args)
    elif kind == "clone":
        eng.clone(*args)
    elif kind == "resize":
        eng.resize(*args)
    elif kind == "hash":
        return eng.hash(*args)
    elif kind == "remove":
        eng.remove(*args)
    elif kind == "rename":
        eng.rename(*args)
    elif kind == "gc":
        eng.gc()
    return None


def state(eng):
    """{spec: bytes} of every volume, snapshot and image."""
    out = {}
    for info in eng.list():
        out[info.name] = eng.read(info.name, 0, info.size)
        for s in info.snapshots:
            spec = f"{info.name}@{s}"
            out[spec] = eng.read(spec, 0, eng.info(spec).size)
    return out


def reference():
    """The states before/after every step of an uninterrupted run, and its length."""
    store = DyingStore(0)
    eng = VolumeEngine(store, owner="ref:1", lease_ttl=0, gc_grace=0)
    states = [{}]
    for op in SCRIPT:
        run(eng, op)
        states.append(state(eng))
    return states, store.count


STATES, TOTAL = reference()


def _old_or_new(before, after, got):
    if set(got) not in (set(before), set(after)):
        return f"specs {sorted(got)} are neither {sorted(before)} nor {sorted(after)}"
    for spec, data in got.items():
        old, new = before.get(spec), after.get(spec)
        if data in (old, new):
            continue
        if old is None or new is None or len(old) != len(new) or len(data) != len(new):
            return f"{spec} has neither the old nor the new content"
        bad = [i for i in range(len(data)) if data[i] not in (old[i], new[i])]
        if bad:
            return f"{spec}: garbage at {bad[:5]}"
    return None


@pytest.mark.parametrize("die_at", range(1, TOTAL + 1))
def test_crash_at_every_mutation(die_at):
    store = DyingStore(die_at)
    eng = VolumeEngine(store, owner="dying:1", lease_ttl=0, gc_grace=0)
    started = []
    with pytest.raises(Crash):
        for op in SCRIPT:
            started.append(op)
            run(eng, op)
    step = len(started) - 1
    survivor = store.survivor()
    eng2 = VolumeEngine(survivor, owner="next:1", lease_ttl=0, gc_grace=0)
    for info in eng2.list():
        eng2.unlock(info.name, force=True)          # the dead owner's locks
    got = state(eng2)
    err = _old_or_new(STATES[step], STATES[step + 1], got)
    assert err is None, f"crash before mutation {die_at} in step {step} {SCRIPT[step][:2]}: " \
        + err
    # The survivor is fully usable: write everywhere, snapshot, collect garbage.
    for info in eng2.list():
        if info.read_only:
            continue
        eng2.write(info.name, 0, b"after")
        eng2.snapshot(info.name, "after-crash")
    before_gc = state(eng2)
    eng2.gc()
    assert state(eng2) == before_gc
