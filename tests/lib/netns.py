"""Two network namespaces joined by a veth pair, for tests that cut a link.

    with NetnsPair(tag) as net:        # needs root and ip(8)
        net.in_ns(net.a, "ip", "addr")
        net.link(False); net.link(True)  # cut / restore (the b side goes down)

Everything that runs in the namespaces is killed and the namespaces removed on
exit; a watchdog does the same if the test process itself is killed.
"""
import os
import shutil
import signal
import subprocess


def sh(*cmd, check=True):
    return subprocess.run(cmd, check=check, capture_output=True, text=True, timeout=60)


def available():
    return os.geteuid() == 0 and shutil.which("ip") is not None


class NetnsPair:
    def __init__(self, tag, subnet=214):
        self.a, self.b = f"arch-{tag}-a", f"arch-{tag}-b"
        self.veth_a, self.veth_b = f"ar{tag}a", f"ar{tag}b"
        n = os.getpid() % 200 + 20
        self.ip_a, self.ip_b = f"10.{subnet}.{n}.1", f"10.{subnet}.{n}.2"
        self.watchdog = None

    def in_ns(self, ns, *cmd, check=True):
        return sh("ip", "netns", "exec", ns, *cmd, check=check)

    def wrap(self, ns):
        return ["ip", "netns", "exec", ns]

    def start(self):
        try:
            for ns in (self.a, self.b):
                sh("ip", "netns", "add", ns)
                self.in_ns(ns, "ip", "link", "set", "lo", "up")
            sh("ip", "link", "add", self.veth_a, "netns", self.a, "type", "veth", "peer",
               "name", self.veth_b, "netns", self.b)
            self.in_ns(self.a, "ip", "addr", "add", f"{self.ip_a}/24", "dev", self.veth_a)
            self.in_ns(self.b, "ip", "addr", "add", f"{self.ip_b}/24", "dev", self.veth_b)
            self.in_ns(self.a, "ip", "link", "set", self.veth_a, "up")
            self.in_ns(self.b, "ip", "link", "set", self.veth_b, "up")
        except subprocess.CalledProcessError as e:
            self.stop()
            raise RuntimeError(f"network namespaces: {e.stderr.strip()}") from None
        cleanup = "; ".join(f"ip netns pids {ns} | xargs -r kill -9; ip netns del {ns}"
                            for ns in (self.a, self.b))
        self.watchdog = subprocess.Popen(
            ["sh", "-c", f"while kill -0 {os.getpid()} 2>/dev/null; do sleep 2; done; "
             f"{cleanup}"], start_new_session=True, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        return self

    def link(self, up):
        self.in_ns(self.b, "ip", "link", "set", self.veth_b, "up" if up else "down")

    def stop(self):
        for ns in (self.a, self.b):
            for pid in sh("ip", "netns", "pids", ns, check=False).stdout.split():
                try:                   # only what this test started lives in them
                    os.kill(int(pid), signal.SIGKILL)
                except ProcessLookupError:
                    pass
            sh("ip", "netns", "del", ns, check=False)
        if self.watchdog is not None:
            self.watchdog.kill()
            self.watchdog.wait()
            self.watchdog = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
