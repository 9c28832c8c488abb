"""Is a block device in use? (mounted, held by another device, or open)."""
import errno
import os
import stat

from archipelago.errors import BackendError


def rdev(device):
    """(major, minor) of a block device, or None if it does not exist."""
    try:
        st = os.stat(device)
    except FileNotFoundError:
        return None
    if not stat.S_ISBLK(st.st_mode):
        return None
    return os.major(st.st_rdev), os.minor(st.st_rdev)


def mounts(device, mountinfo="/proc/self/mountinfo"):
    """Mount points of `device` (matched by device number, so any alias counts)."""
    num = rdev(device)
    if num is None:
        return []
    want = f"{num[0]}:{num[1]}"
    out = []
    with open(mountinfo) as f:
        for line in f:
            fields = line.split()
            if len(fields) > 4 and fields[2] == want:
                out.append(fields[4])
    return out


def holders(device):
    """Devices stacked on this one (dm, md, ...), from sysfs."""
    name = os.path.basename(os.path.realpath(device))
    try:
        return sorted(os.listdir(f"/sys/class/block/{name}/holders"))
    except FileNotFoundError:
        return []


def openers(device, skip_pids=()):
    """PIDs that have the device open (a scan of /proc/*/fd)."""
    num = rdev(device)
    if num is None:
        return []
    pids = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) in skip_pids:
            continue
        fd_dir = f"/proc/{pid}/fd"
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            continue
        for fd in fds:
            try:
                st = os.stat(f"{fd_dir}/{fd}")
            except OSError:
                continue
            if stat.S_ISBLK(st.st_mode) and (os.major(st.st_rdev), os.minor(st.st_rdev)) == num:
                pids.append(int(pid))
                break
    return pids


def exclusive_busy(device):
    """True if the kernel refuses an O_EXCL open (mounted or claimed)."""
    try:
        fd = os.open(device, os.O_RDONLY | os.O_EXCL | os.O_CLOEXEC)
    except OSError as e:
        if e.errno == errno.EBUSY:
            return True
        if e.errno in (errno.ENOENT, errno.ENXIO, errno.ENODEV):
            return False
        raise BackendError(f"{device}: {e.strerror}", errno=e.errno) from None
    os.close(fd)
    return False


def busy(device):
    """A one-line reason why `device` is in use, or '' if it is free."""
    where = mounts(device)
    if where:
        return f"{device} is mounted on {', '.join(where)}"
    held = holders(device)
    if held:
        return f"{device} is held by {', '.join(held)}"
    pids = openers(device, skip_pids={os.getpid()})
    if pids:
        return f"{device} is open by process {', '.join(map(str, pids))}"
    if exclusive_busy(device):
        return f"{device} is in use (exclusively claimed)"
    return ""
