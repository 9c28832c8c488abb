"""Wake-ups for RADOS lease waiters: a watch on the lease record, a notify on release.

A writer waiting for a lease (lease_acquire(wait=True)) watches the record object;
whoever releases or breaks the lease notifies it, so the waiter retries at once
instead of polling. A lease that simply expires (its holder died) sends nothing,
so a waiter still retries every WAIT_CAP seconds.

python3-rados 16's Watch hands librados a borrowed pointer to itself, and its
__dealloc__ unwatches while holding the GIL: a Watch dropped to the garbage
collector while a notify is arriving deadlocks (the callback waits for the GIL,
the unwatch for the callback) or, once freed, crashes -- the segfault seen before.
Measured in a subprocess: explicit close() under a notify storm is fine, GC is
not. So a `Waker` keeps its Watch referenced until it closes it explicitly, and
the callback only sets an Event. Any failure to watch falls back to polling.
"""
import logging
import threading

log = logging.getLogger(__name__)

WAIT_CAP = 1.0          # s between retries while watching (an expiry sends no notify)
POLL = 0.25             # s between retries without a watch
NOTIFY_TIMEOUT_MS = 5000


class Waker:
    """A watch on one lease record of ioctx `io`; `wait(t)` until notified or t s."""

    def __init__(self, io, name):
        self.event = threading.Event()
        self._watch = None
        try:
            self._watch = io.watch(name, self._notified, self._failed)
        except Exception as e:  # any librados error: poll instead
            log.debug("lease %s: no watch (%s); polling", name, e)

    @property
    def watching(self):
        return self._watch is not None

    def _notified(self, *_args):      # (notify_id, notifier_id, watch_id, data)
        self.event.set()

    def _failed(self, *_args):        # the watch broke (reconnect, blocklist): retry now
        self.event.set()

    def arm(self):
        """Before each attempt: a notify from now on ends the next wait."""
        self.event.clear()

    def wait(self, seconds):
        cap = WAIT_CAP if self.watching else POLL
        self.event.wait(max(0.0, min(seconds, cap)))

    def close(self):
        w, self._watch = self._watch, None
        if w is not None:
            try:
                w.close()
            except Exception as e:  # handle already shut down
                log.debug("closing lease watch: %s", e)


def notify(io, name):
    """Wake the waiters of a lease record (asynchronous: a dead watcher would make a
    synchronous notify wait for its timeout)."""
    try:
        io.aio_notify(name, _ignore, msg="released", timeout_ms=NOTIFY_TIMEOUT_MS)
    except Exception as e:  # the waiters fall back to WAIT_CAP
        log.debug("lease %s: notify failed: %s", name, e)


def _ignore(*_args):
    pass
