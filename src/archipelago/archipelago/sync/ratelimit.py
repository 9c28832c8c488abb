"""A token bucket: `--limit RATE`, `uploadspeed`/`downloadspeed`.

Tokens (bytes) accrue at `rate` per second up to `burst`; taking more than there
are leaves a debt the caller sleeps off at once, so over any stretch longer than
burst/rate the throughput stays within a few percent of `rate`. The bucket starts
empty: a transfer of N bytes takes at least N/rate seconds.
"""
import threading
import time

from ..errors import InvalidArgument
from ..units import parse_size


def parse_rate(text):
    """'50M', '1.5G', '800K', '1048576B' -> bytes per second (bare number = MiB/s);
    None, '' or '0' -> None (unlimited)."""
    if text is None or str(text).strip() in ("", "0"):
        return None
    t = str(text).strip()
    for suffix in ("/s", "ps", "B/s"):
        if t.endswith(suffix) and len(t) > len(suffix):
            t = t[:-len(suffix)]
            break
    if t[-1:] in ("B", "b") and t[:-1].isdigit():
        rate = int(t[:-1])
    else:
        mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
        unit = t[-1:].upper()
        try:
            rate = float(t[:-1]) * mult[unit] if unit in mult else parse_size(t, "M",
                                                                          sector=0)
        except (ValueError, InvalidArgument):
            raise InvalidArgument(f"invalid rate {text!r} (e.g. 50M, 1.5G, 800K)") from None
    if rate <= 0:
        raise InvalidArgument(f"invalid rate {text!r}: must be positive")
    return int(rate)


class TokenBucket:
    def __init__(self, rate, burst=None, clock=time.monotonic, sleep=time.sleep):
        if rate <= 0:
            raise InvalidArgument("rate must be positive")
        self.rate = float(rate)
        self.burst = float(burst if burst is not None else max(64 << 10, rate / 20))
        self.clock, self.sleep = clock, sleep
        self.tokens = 0.0
        self.last = clock()
        self.lock = threading.Lock()

    def __call__(self, n):
        self.take(n)

    def take(self, n):
        """Account for n bytes, sleeping as long as the rate requires."""
        with self.lock:
            now = self.clock()
            self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
            self.last = now
            self.tokens -= n
            wait = -self.tokens / self.rate if self.tokens < 0 else 0.0
        if wait > 0:
            self.sleep(wait)


def limiter(rate):
    """A `before(n)` callable for format.Reader/Writer: a TokenBucket, or None."""
    return TokenBucket(rate) if rate else None
