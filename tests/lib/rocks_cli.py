"""Driving a test cluster (tools/cluster.py) through the real `rocks` commands.

Shared by the control-plane and img_sync tests, so each says only what it checks:

    rows = rocks_json(cl, "list", "host", "storagemap", NAS)
    row = storagemap_row(cl, NAS, "vol1")
    wait_for(lambda: storagemap_row(cl, NAS, "vol1")["state"] == "mapped", "vol1 mapped")
"""
import json
import time


def rocks_json(cl, *words):
    """`rocks WORDS output-format=json`, which must succeed; [] for no output."""
    r = cl.rocks(*words, "output-format=json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout) if r.stdout.strip() else []


def storagemap_row(cl, nas, volume):
    """The `list host storagemap` row of `volume` on `nas` (StopIteration if none)."""
    return next(m for m in rocks_json(cl, "list", "host", "storagemap", nas)
                if m["volume"] == volume)


def wait_for(fn, what, timeout=60, interval=0.3):
    """fn()'s first truthy value within `timeout` seconds, else an AssertionError."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = fn()
        if v:
            return v
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}")
