"""One role process on the peer framework (archipelago.peer).

`RolePeer` is a framework Peer whose ops table sends every op to the role's
handler (blocker, mapperd, vlmcd: plain callables, see transport.py), so the
framework does what it is for -- binding the port range, checking requests in
the core, the worker threads, failure messages, recovery of dead peers -- and
the roles stay testable without a segment. The Peer is also the role's
Endpoint: mapperd's requests to the blockers and vlmcd's to mapperd and the
data blocker go out from the role's own port, replies come back on its loop.

Stop (SIGTERM): the framework stops accepting, lets the workers finish what
they hold and unbinds (libxseg fails whatever is still queued back to its
senders); then the role's store is closed and its leases given back.
"""
import logging

from ..errors import Unavailable
from . import roles
from .transport import Request as HRequest
from .xseg_transport import XsegTransport

log = logging.getLogger(__name__)


def _role_peer_class():
    from ..peer import Peer
    from ..peer import ops as OPS

    class RolePeer(Peer):
        """A Peer serving every op through one handler callable (set after build)."""

        handler = None

        def ops_table(self):
            return {int(op): self._dispatch for op in OPS.METHOD}

        def _dispatch(self, req):
            buf = req.data
            return self.handler(HRequest(req.op, req.target, req.offset, req.size,
                                         req.flags, buf, min(req.size, len(buf))))

    return RolePeer


def run_role(cfg, xseg_cfg, role, node_name, ready):
    """Serve `role` until SIGTERM/SIGINT; `ready()` once its ports are bound."""
    import xseg

    from ..peer import serve_forever
    try:
        seg = xseg.Segment.join(xseg_cfg.segment_name)
    except xseg.XsegError as e:
        raise Unavailable(f"{e.strerror} (start the node with `archipelago start`)") from None
    closer = None
    try:
        seg.check()     # recover the ports of a crashed predecessor before binding
        ports = range(role.opts.portno_start, role.opts.portno_end + 1)
        try:
            peer = _role_peer_class()(seg, ports, nr_threads=role.opts.nr_threads,
                                      nr_ops=role.opts.nr_ops, log_level=role.opts.log_level,
                                      name=role.name)
        except xseg.XsegError as e:
            raise Unavailable(f"[{role.name}] cannot bind ports {ports.start}-"
                              f"{ports.stop - 1}: {e.strerror}") from None
        t = XsegTransport(peer, xseg_cfg.request_timeout)
        peer.handler, closer = roles.build(cfg, role, t, node_name)
        log.info("%s (%s) on segment %s, ports %s, %d threads", role.name, role.type,
                 xseg_cfg.segment_name, list(ports), role.opts.nr_threads)
        serve_forever(peer, ready)
    finally:
        if closer is not None:
            try:
                closer()
            except Exception as e:
                log.warning("%s: closing: %s", role.name, e)
        seg.close()
