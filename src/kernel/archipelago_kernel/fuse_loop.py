"""FUSE+loop: `nbdfuse` shows the export as a file, `losetup` makes it a block device.

Works on any kernel with FUSE and loop devices (no nbd module needed), at the
cost of a FUSE round trip per I/O. Layout under the mapping's work_dir:

    fuse/disk        the export as a file (nbdfuse's mount point is fuse/)
    nbdfuse.pid      written by nbdfuse once it serves (our readiness signal)
    nbdfuse.log      its stderr, quoted in errors

nbdfuse runs in its own session so it outlives the `map` command; detach
unmounts it with fusermount3, which makes it exit.
"""
import os
import time
from pathlib import Path

from archipelago import process
from archipelago.errors import BackendError, Timeout

from .connector import Connector

READY_TIMEOUT = 15.0
_children = {}          # pid -> Popen of nbdfuse processes this process started (reaped)


def _tail(path, lines=3):
    try:
        text = Path(path).read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " / ".join(text[-lines:])


def _pid_alive(pid):
    if not pid:
        return False
    child = _children.get(pid)
    if child is not None:
        return child.poll() is None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:                                     # a zombie is not alive
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def backing_file(device):
    name = os.path.basename(device)
    try:
        return Path(f"/sys/block/{name}/loop/backing_file").read_text().strip()
    except OSError:
        return None


class FuseLoopConnector(Connector):
    name = "fuse"

    @classmethod
    def available(cls):
        for tool in ("nbdfuse", "losetup", "fusermount3"):
            if not process.which(tool):
                return False, f"{tool} is not installed"
        if not os.path.exists("/dev/fuse"):
            return False, "/dev/fuse is missing (no FUSE in this kernel?)"
        if not os.path.exists("/dev/loop-control"):
            return False, "/dev/loop-control is missing (no loop devices?)"
        return True, ""

    def attach(self, mapping, work_dir):
        work_dir = Path(work_dir)
        mnt = work_dir / "fuse"
        mnt.mkdir(exist_ok=True)
        disk = mnt / "disk"
        pidfile = work_dir / "nbdfuse.pid"
        logfile = work_dir / "nbdfuse.log"
        pidfile.unlink(missing_ok=True)
        argv = ["nbdfuse", "-P", str(pidfile)]
        if mapping.read_only:
            argv.append("-r")
        argv += [str(disk), mapping.uri]
        with open(logfile, "w") as log:
            child = process.spawn(argv, stderr=log)
        _children[child.pid] = child
        mapping.extra.update(mountpoint=str(mnt), file=str(disk), pid=child.pid,
                             pidfile=str(pidfile))
        try:
            self._wait_ready(child, pidfile, logfile)
            argv = ["losetup", "--find", "--show"]
            if mapping.read_only:
                argv.append("--read-only")
            res = process.run([*argv, str(disk)], timeout=30)
            mapping.device = res.stdout.strip()
            if not mapping.device.startswith("/dev/"):
                raise BackendError(f"losetup printed {mapping.device!r}, not a device")
        except BaseException:
            self.detach(mapping, force=True)
            raise
        return mapping

    @staticmethod
    def _wait_ready(child, pidfile, logfile):
        deadline = time.monotonic() + READY_TIMEOUT
        delay = 0.001
        while True:
            if pidfile.exists() and pidfile.stat().st_size:
                return
            if child.poll() is not None:
                raise BackendError(f"nbdfuse exited ({child.returncode}): {_tail(logfile)}")
            if time.monotonic() > deadline:
                raise Timeout(f"nbdfuse not ready after {READY_TIMEOUT}s: {_tail(logfile)}")
            time.sleep(delay)
            delay = min(delay * 2, 0.02)

    def detach(self, mapping, force=False):
        extra = mapping.extra
        dev = mapping.device
        if dev and backing_file(dev) == extra.get("file"):
            process.run(["losetup", "-d", dev], timeout=30)
        mnt = extra.get("mountpoint")
        if mnt:
            self._unmount(mnt, extra.get("pid"), force)
            try:
                os.rmdir(mnt)
            except OSError:
                pass
        pid = extra.get("pid")
        self._reap(pid)
        if extra.get("pidfile"):
            Path(extra["pidfile"]).unlink(missing_ok=True)

    @staticmethod
    def _unmount(mnt, pid, force):
        for attempt in range(50):
            if not os.path.ismount(mnt):
                return
            argv = ["fusermount3", "-u"] + (["-z"] if force or attempt > 20 else []) + [mnt]
            res = process.run(argv, check=False, timeout=30)
            if res.rc == 0 or not os.path.ismount(mnt):
                return
            time.sleep(0.02)          # the loop device may release the file lazily
        raise BackendError(f"cannot unmount {mnt}: {res.stderr.strip()}")

    @staticmethod
    def _reap(pid, timeout=5.0):
        if not pid:
            return
        child = _children.pop(pid, None)
        deadline = time.monotonic() + timeout
        while _pid_alive(pid) if child is None else child.poll() is None:
            if time.monotonic() > deadline:
                try:
                    os.kill(pid, 15)
                except ProcessLookupError:
                    pass
                if child is not None:
                    child.wait(5)
                return
            time.sleep(0.01)

    def alive(self, mapping):
        dev = mapping.device
        return (bool(dev) and backing_file(dev) == mapping.extra.get("file")
                and _pid_alive(mapping.extra.get("pid")))
