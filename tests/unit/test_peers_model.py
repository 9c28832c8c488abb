"""Model-based test of the peer stack (vlmcd + mapperd + blockers, in-process) with
the real VolumeEngine: random writes, snapshots, clones, resizes, removes, hash
and gc, checked byte for byte against an in-memory model of every live volume
and snapshot. It exercises vlmcd's mapping cache across epochs (write mappings,
and the read mappings it keeps of volumes whose lease the node holds: every
written volume here) as well as the engine's copy-on-write."""
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, rule

from archipelago import client
from archipelago.store.memory import MemoryStore

OBJ = 64 << 10
SIZE = 8 * OBJ


class Volumes(RuleBasedStateMachine):
    vols = Bundle("vols")
    snaps = Bundle("snaps")

    def __init__(self):
        super().__init__()
        self.c = client.local(MemoryStore(), MemoryStore())
        self.model = {}          # spec -> bytearray
        self.n = 0

    def name(self, prefix):
        self.n += 1
        return f"{prefix}{self.n}"

    @rule(target=vols)
    def create(self):
        name = self.name("v")
        self.c.create(name, SIZE, object_size=OBJ)
        self.model[name] = bytearray(SIZE)
        return name

    @rule(vol=vols, data=st.data())
    def write(self, vol, data):
        if vol not in self.model:
            return
        size = len(self.model[vol])
        off = data.draw(st.integers(0, size // 512 - 1)) * 512
        n = data.draw(st.sampled_from([512, 4096, 5000 // 512 * 512, OBJ, OBJ + 4096]))
        n = min(n, size - off)
        payload = bytes([data.draw(st.integers(1, 255))]) * n
        with self.c.volume(vol) as v:
            v.pwrite(payload, off)
        self.model[vol][off:off + n] = payload

    @rule(spec=st.one_of(vols, snaps), data=st.data())
    def read(self, spec, data):
        """A read of part of the volume: served from mapperd's answer for the whole
        objects it falls in, or from what vlmcd kept of an earlier one."""
        if spec not in self.model:
            return
        size = len(self.model[spec])
        off = data.draw(st.integers(0, size - 1))
        n = data.draw(st.integers(1, min(2 * OBJ + 4096, size - off)))
        with self.c.volume(spec) as v:
            assert v.pread(n, off) == bytes(self.model[spec][off:off + n]), (spec, off, n)

    @rule(target=snaps, vol=vols)
    def snapshot(self, vol):
        if vol not in self.model:
            return "none@none"
        snap = self.name("s")
        self.c.snapshot(vol, snap)
        spec = f"{vol}@{snap}"
        self.model[spec] = bytearray(self.model[vol])
        return spec

    @rule(target=vols, snap=snaps)
    def clone(self, snap):
        if snap not in self.model:
            return "none"
        name = self.name("c")
        self.c.clone(snap, name)
        self.model[name] = bytearray(self.model[snap])
        return name

    @rule(vol=vols, grow=st.booleans(), k=st.integers(1, 4))
    def resize(self, vol, grow, k):
        if vol not in self.model:
            return
        old = len(self.model[vol])
        new = old + k * 4096 if grow else max(512, old - k * 4096)
        self.c.resize(vol, new)
        m = self.model[vol]
        self.model[vol] = m[:new] + bytearray(max(0, new - old))

    @rule(spec=st.one_of(vols, snaps))
    def remove(self, spec):
        if spec not in self.model or (("@" not in spec) and any(
                s.startswith(spec + "@") for s in self.model)):
            return                # (a volume with snapshots: kept simple)
        self.c.remove(spec)
        del self.model[spec]

    @rule(snap=snaps)
    def hash(self, snap):
        if snap in self.model:
            assert self.c.hash(snap)

    @rule()
    def gc(self):
        self.c.gc()

    @invariant()
    def reads_match_the_model(self):
        for spec, expected in self.model.items():
            with self.c.volume(spec) as v:
                assert v.size == len(expected), spec
                assert v.pread(len(expected), 0) == bytes(expected), spec


TestVolumes = Volumes.TestCase
TestVolumes.settings = settings(max_examples=25, stateful_step_count=25, deadline=None,
                                suppress_health_check=[HealthCheck.too_slow])
