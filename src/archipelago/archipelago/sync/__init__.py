"""Incremental send/receive streams between nodes (DESIGN §5; docs/streams.md).

    from archipelago import sync
    stats = sync.send(client, "vm1@s2", out, from_snap="s1", rate=50 << 20)
    stats = sync.receive(client, "vm1", inp, state_dir=DIR)   # Interrupted -> .token
    token = sync.resume_token(DIR, "vm1")       # after a crash of the receiver
    stats = sync.send(client, "vm1@s2", out, resume=token)

Transports (one module each under sync.transport: file, tcp, ssh, bbcp) move the
bytes; `sync.transport.get(name)` picks one, the [sync] section configures them.
"""
from .format import StreamCorrupt, StreamError, StreamTruncated
from .receive import Interrupted, receive
from .send import plan, send
from .stage import BaseMismatch, Job, load_state, locked, token_of


def resume_token(state_dir, volume):
    """The resume token of an interrupted receive into `volume`, or None."""
    state = load_state(state_dir, volume)
    return token_of(state) if state and state.get("phase") == "receiving" else None


def abort(client, state_dir, volume):
    """Forget an interrupted receive into `volume` (removes its staging volume)."""
    with locked(state_dir, volume):
        state = load_state(state_dir, volume)
        if state is None:
            return False
        Job(client, volume, state_dir, state).abort()
        return True


__all__ = ["BaseMismatch", "Interrupted", "StreamCorrupt", "StreamError",
           "StreamTruncated", "abort", "plan", "receive", "resume_token", "send"]
