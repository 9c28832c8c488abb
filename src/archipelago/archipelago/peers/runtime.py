"""The serving loop of one role process, on the node's segment.

The role binds its ports (portno_start..portno_end), plus one dynamic port for
the requests it sends itself (mapperd to the blockers, vlmcd to mapperd and the
data blocker). The main thread sleeps on the ports' shared wakeup, accepts
requests in batches and hands each to a pool of nr_threads workers, which run
the role's handler and respond; a handler may block (a write waiting for a
lock) without stalling the others.

Stop (SIGTERM): stop accepting, let the workers finish what they hold, unbind
(libxseg fails whatever is still queued back to its senders, so nothing is lost
silently), close the store.
"""
import errno as E
import logging
import threading
from concurrent.futures import ThreadPoolExecutor

from ..errors import ArchipelagoError, Unavailable
from . import roles
from .transport import ReplyTooLarge
from .transport import Request as HRequest
from .xseg_transport import XsegTransport

log = logging.getLogger(__name__)

WAKE_EVERY = 0.5     # seconds: how often an idle loop looks at the stop flag


def run_role(cfg, xseg_cfg, role, node_name, ready, stop):
    import xseg
    try:
        seg = xseg.Segment.join(xseg_cfg.segment_name)
    except xseg.XsegError as e:
        raise Unavailable(f"cannot join segment {xseg_cfg.segment_name}: {e} "
                          "(start the node with `archipelago start`)") from None
    ports, out, closer = [], None, None
    try:
        seg.check()     # recover ports of a crashed predecessor before binding
        ports = [_bind(seg, p, role) for p in range(role.opts.portno_start,
                                                     role.opts.portno_end + 1)]
        for p in ports[1:]:
            p.share_signal(ports[0])
        out = XsegTransport(seg, seg.bind(None, owner=f"{role.name}-out"),
                            xseg_cfg.request_timeout)
        handler, closer = roles.build(cfg, role, out, node_name)
        log.info("%s (%s) serving port%s %s on segment %s with %d threads", role.name,
                 role.type, "s" if len(ports) > 1 else "",
                 ",".join(str(p.portno) for p in ports), xseg_cfg.segment_name,
                 role.opts.nr_threads)
        ready()
        _serve(ports, handler, role, stop)
    finally:
        for p in ports:
            _quietly(p.close)
        if out is not None:
            _quietly(out.close)
        if closer is not None:
            _quietly(closer)
        _quietly(seg.close)


def _bind(seg, portno, role):
    import xseg
    try:
        return seg.bind(portno, owner=role.name, max_requests=0)
    except xseg.PortInUse:
        raise Unavailable(f"port {portno} of [{role.name}] is bound by a live process "
                          "(is the role already running?)") from None


def _serve(ports, handler, role, stop):
    with ThreadPoolExecutor(role.opts.nr_threads, thread_name_prefix=role.name) as pool:
        slots = threading.BoundedSemaphore(role.opts.nr_threads * 4)
        while not stop.is_set():
            got = 0
            for port in ports:
                for r in port.accept():
                    got += 1
                    slots.acquire()
                    pool.submit(_serve_one, port, r, handler, role, slots)
            if not got:
                ports[0].wait(WAKE_EVERY)
        log.info("%s stopping: draining requests in flight", role.name)


def _serve_one(port, r, handler, role, slots):
    try:
        buf = r.data
        req = HRequest(r.op, r.target, r.offset, r.size, r.flags, buf, min(r.size, len(buf)))
        try:
            result = handler(req)
        except ReplyTooLarge as e:
            r.serviced = e.needed
            port.fail(r, E.EMSGSIZE)
            return
        except ArchipelagoError as e:
            _fail(port, r, e.errno, str(e))
            if e.errno in (E.EIO, E.ESTALE):
                log.error("%s: %s %s failed: %s", role.name, r.op_name, r.target, e)
            else:
                log.debug("%s: %s %s: %s", role.name, r.op_name, r.target, e)
            return
        except Exception as e:
            log.exception("%s: bug serving %s %s", role.name, r.op_name, r.target)
            _fail(port, r, E.EIO, f"internal error in {role.name}: {type(e).__name__}: {e}")
            return
        if isinstance(result, int):
            r.serviced = result
        elif len(result) > len(buf):
            r.serviced = len(result)
            port.fail(r, E.EMSGSIZE)
            return
        else:
            buf[:len(result)] = result
            r.serviced = len(result)
        port.respond(r)
    except Exception:
        log.exception("%s: cannot respond to %s", role.name, r)
    finally:
        slots.release()


def _fail(port, r, err, message):
    """Fail `r` with errno `err`; the message goes in the data buffer if it fits."""
    msg = message.encode("utf-8", "replace")[:len(r.data)]
    if msg:
        r.data[:len(msg)] = msg
    r.serviced = len(msg)
    port.fail(r, err or E.EIO)


def _quietly(fn):
    try:
        fn()
    except Exception as e:
        log.debug("cleanup: %s", e)
