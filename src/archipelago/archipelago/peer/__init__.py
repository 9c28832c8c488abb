"""The peer framework: processes that serve and send requests over xseg.

- `Peer` (server.py): bind a port range, accept, dispatch by op to handler
  methods on N worker threads, respond; core-side request checks (ops.py).
- `Endpoint` (endpoint.py): the requester side every Peer also has: submit()
  returns a Pending, call() waits for the Reply; a dynamic-port Endpoint is a
  plain client.
- `payload` (payload.py): small structured payloads in a data buffer.
- `run_role` (runner.py): config, segment, SIGTERM, serve.
- config.py: the [XSEG] section and the options every role section extends.

See docs/xseg.md.
"""
from xseg import Flag, Op

from . import payload
from .config import PEER_OPTIONS, XSEG, role_section, spec
from .endpoint import Endpoint
from .reply import Pending, Reply
from .runner import build, open_segment, run_role, serve_forever
from .server import Peer

__all__ = ["PEER_OPTIONS", "XSEG", "Endpoint", "Flag", "Op", "Peer", "Pending", "Reply",
           "build", "open_segment", "payload", "role_section", "run_role", "serve_forever",
           "spec"]
