"""RadosStore pieces that need no cluster: error mapping, the generation key order,
the configuration section."""
import errno

import pytest

from archipelago import config
from archipelago.errors import (
    BackendError,
    ConfigError,
    Exists,
    Fenced,
    InvalidArgument,
    NoSpace,
    NotFound,
    Timeout,
)
from archipelago.store import rados as rados_mod
from archipelago.store.rados import RADOS, Blocklisted, error, wrap
from archipelago.store.rados_lease import gen_key


@pytest.mark.parametrize("err,cls", [
    (errno.ENOENT, NotFound), (errno.EEXIST, Exists), (errno.ETIMEDOUT, Timeout),
    (errno.ENOSPC, NoSpace), (errno.EDQUOT, NoSpace), (errno.EINVAL, InvalidArgument),
    (errno.ESHUTDOWN, Blocklisted), (errno.ECANCELED, Fenced), (errno.EIO, BackendError),
    (errno.EPERM, BackendError),
])
def test_errno_mapping(err, cls):
    e = error(err, "write obj")
    assert type(e) is cls or isinstance(e, cls)
    assert str(e).startswith("write obj: ")


def test_blocklisted_is_fenced_and_message_is_clear():
    e = error(errno.ESHUTDOWN, "write x")
    assert isinstance(e, Fenced) and "fenced by the cluster" in str(e)
    assert "newer lease generation" in str(error(errno.ECANCELED, "write x"))


def test_wrap_library_exceptions():
    class FakeRadosError(Exception):
        errno = -errno.ENOENT
    assert isinstance(wrap(FakeRadosError("x"), "stat o"), NotFound)
    assert isinstance(wrap(RuntimeError("boom"), "stat o"), BackendError)
    already = Exists("x")
    assert wrap(already, "y") is already


def test_generation_keys_sort_like_numbers():
    gens = [0, 1, 9, 10, 99, 100, 2**40, 2**63 - 1]
    assert sorted(gen_key(g) for g in gens) == [gen_key(g) for g in gens]
    assert all(len(gen_key(g)) == 20 for g in gens)


def test_config_section_defaults_and_errors():
    cfg = config.from_text("[blockerb]\ntype = rados\npool = p\nportno_start = 1000\n")
    v = cfg.section(RADOS, "blockerb")
    assert (v.pool, v.namespace, v.cephx_id, v.op_timeout) == ("p", "", "admin", 30)
    assert v.fence_blocklist is True and v.lease_namespace == ""
    bad = config.from_text("[blockerb]\nqueue_depth = 0\n")
    with pytest.raises(ConfigError, match="queue_depth"):
        bad.section(RADOS, "blockerb")
    wrong = config.from_text("[blockerb]\ntype = filed\n")
    with pytest.raises(ConfigError, match="not rados"):
        rados_mod.RadosStore.from_config(wrong)


# -- rados_aio.Op: the Future subset of the native data path ---------------------------------
def test_op_result_callbacks_and_errors():
    import threading

    from archipelago.store.rados_aio import Op
    lock = threading.Lock()
    op, seen = Op(lock), []
    op.add_done_callback(lambda o: seen.append(("early", o.done())))
    op.add_done_callback(lambda o: 1 / 0)            # logged, does not stop the others
    op.add_done_callback(lambda o: seen.append(("second", o.result())))
    threading.Timer(0.05, op.finish, args=(42,)).start()
    assert op.result(timeout=30) == 42
    assert op.exception() is None
    op.add_done_callback(lambda o: seen.append(("late", o.result())))   # runs at once
    assert seen == [("early", True), ("second", 42), ("late", 42)]
    bad = Op(lock)
    bad.finish(exc=NotFound("gone"))
    assert isinstance(bad.exception(), NotFound)
    with pytest.raises(NotFound):
        bad.result()


def test_op_result_timeout():
    import threading
    from concurrent.futures import TimeoutError as FutTimeout

    from archipelago.store.rados_aio import Op
    with pytest.raises(FutTimeout):
        Op(threading.Lock()).result(timeout=0.01)
