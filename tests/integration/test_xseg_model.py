"""A model-based test of the binding: random sequences of get/submit/accept/
respond/receive/put and port restarts on a real segment, checked against a
simple model (where every request is, what its data holds, who gets a reply)."""
import errno
import itertools
import os

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
)

import xseg

PORTS = (1, 2, 3)
_seq = itertools.count()


class XsegModel(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.name = f"pytest-model-{os.getpid()}-{next(_seq)}"
        self.seg = xseg.Segment.create(f"posix:{self.name}:2:8:1:12:64")
        self.ports = {n: self.seg.bind(n, owner=f"m{n}") for n in PORTS}
        self.held = {n: [] for n in PORTS}       # (req, tag) got or received, ours
        self.serving = {n: [] for n in PORTS}    # (req, tag) accepted, to respond
        self.queued = {n: [] for n in PORTS}     # tags queued for port n
        self.replies = {n: [] for n in PORTS}    # (tag, errno) on their way to n
        self.tags = itertools.count(1)
        self.gen = dict.fromkeys(PORTS, 0)     # a restarted port is a new requester

    def teardown(self):
        for p in self.ports.values():
            p.close()
        info = self.seg.info()
        self.seg.destroy()
        assert info["pool_free"] == info["nr_reqs"] and info["heap_free"] == info["heap_size"]

    @staticmethod
    def pattern(tag, n):
        return (tag.to_bytes(8, "little") * (n // 8 + 1))[:n]

    def stamp(self, req, tag):
        req.offset = tag
        req.data[:] = self.pattern(tag, req.datalen)

    def intact(self, req, tag):
        return req.offset == tag and bytes(req.data) == self.pattern(tag, req.datalen)

    @rule(n=st.sampled_from(PORTS), size=st.sampled_from([0, 1, 100, 4096, 300_000]))
    def get(self, n, size):
        try:
            req = self.ports[n].get(size)
        except xseg.NoBuffers:
            return                                # 64 requests, 1 MiB heap: may run out
        tag = next(self.tags)
        self.stamp(req, tag)
        self.held[n].append((req, tag))

    @precondition(lambda self: any(self.held.values()))
    @rule(data=st.data(), dst=st.sampled_from((*PORTS, 5)))
    def submit(self, data, dst):
        n = data.draw(st.sampled_from([p for p in PORTS if self.held[p]]))
        req, tag = self.held[n].pop(data.draw(st.integers(0, len(self.held[n]) - 1)))
        if dst == 5:
            with pytest.raises(xseg.PortNotBound):
                self.ports[n].submit(dst, req)
            self.held[n].append((req, tag))      # refused: still ours, untouched
            assert self.intact(req, tag)
            return
        self.ports[n].submit(dst, req)
        self.queued[dst].append((tag, (n, self.gen[n])))

    @rule(n=st.sampled_from(PORTS))
    def accept(self, n):
        got = self.ports[n].accept()
        assert [r.offset for r in got] == [t for t, _ in self.queued[n]]
        for r, (tag, src) in zip(got, self.queued[n], strict=True):
            assert self.intact(r, tag) and r.path[-1] == src[0]
            self.serving[n].append((r, tag, src))
        self.queued[n] = []

    @precondition(lambda self: any(self.serving.values()))
    @rule(data=st.data(), err=st.sampled_from([0, 0, errno.ENOENT, errno.EIO]))
    def respond(self, data, err):
        n = data.draw(st.sampled_from([p for p in PORTS if self.serving[p]]))
        req, tag, src = self.serving[n].pop(0)
        if err:
            req.fail(err)
        self.ports[n].respond(req)
        self.reply(src, tag, err)

    def reply(self, src, tag, err):
        """A reply reaches its requester only if that port was not restarted since."""
        port, gen = src
        if self.gen[port] == gen:
            self.replies[port].append((tag, err))

    @rule(n=st.sampled_from(PORTS))
    def receive(self, n):
        got = self.ports[n].receive()
        assert sorted(r.offset for r in got) == sorted(t for t, _ in self.replies[n])
        want = dict(self.replies[n])
        for r in got:
            err = want[r.offset]
            assert r.failed == bool(err) and r.errno == err and r.path == []
            assert self.intact(r, r.offset)
            self.held[n].append((r, r.offset))
        self.replies[n] = []

    @precondition(lambda self: any(self.held.values()))
    @rule(data=st.data())
    def put(self, data):
        n = data.draw(st.sampled_from([p for p in PORTS if self.held[p]]))
        req, _ = self.held[n].pop()
        self.ports[n].put(req)

    @rule(n=st.sampled_from(PORTS))
    def restart(self, n):
        """Port n's peer goes away and comes back: what was queued for it or being
        served by it fails back; what it held and the replies due to it are gone."""
        self.ports[n].close()
        self.gen[n] += 1
        dying = self.queued[n] + [(tag, src) for _, tag, src in self.serving[n]]
        self.queued[n], self.serving[n], self.held[n], self.replies[n] = [], [], [], []
        for tag, src in dying:
            self.reply(src, tag, errno.ECONNRESET)
        self.ports[n] = self.seg.bind(n, owner=f"m{n}")

    @invariant()
    def queue_depths_match(self):
        for n in PORTS:
            info = self.seg.port_info(n)
            assert info["req_q"] == len(self.queued[n])
            assert info["reply_q"] == len(self.replies[n])


XsegModel.TestCase.settings = settings(max_examples=40, stateful_step_count=30,
                                       deadline=None)
TestXsegModel = XsegModel.TestCase
