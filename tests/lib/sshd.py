"""A private sshd for tests: key-only login on 127.0.0.1, its host key, client key,
authorized_keys and known_hosts in a directory of the test's own (root's ~/.ssh is
never read: the client runs with -F /dev/null and explicit files).

    with PrivateSshd(tmp_dir) as sshd:      # needs root, sshd, ssh, ssh-keygen
        subprocess.run([*sshd.command, "127.0.0.1", "true"])
"""
import os
import shutil
import socket
import subprocess
import time


def _which(name):
    return shutil.which(name, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")


def available():
    return os.geteuid() == 0 and all(_which(c) for c in ("sshd", "ssh", "ssh-keygen"))


class PrivateSshd:
    def __init__(self, directory, port=None):
        self.dir = directory
        self.port = port or _free_port()
        self.proc = None
        d = self.dir
        self.command = ["ssh", "-F", "/dev/null", "-i", str(d / "id"), "-p", str(self.port),
                        "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
                        "-o", "LogLevel=ERROR", "-o", "StrictHostKeyChecking=yes",
                        "-o", f"UserKnownHostsFile={d / 'known_hosts'}"]

    def start(self, timeout=20):
        d = self.dir
        d.mkdir(parents=True, exist_ok=True)
        for key in ("host", "id"):
            if not (d / key).exists():
                subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f",
                                str(d / key)], check=True)
        (d / "authorized_keys").write_text((d / "id.pub").read_text())
        host_pub = (d / "host.pub").read_text().split()
        (d / "known_hosts").write_text(f"[127.0.0.1]:{self.port} {host_pub[0]} "
                                       f"{host_pub[1]}\n")
        (d / "config").write_text(
            f"Port {self.port}\nListenAddress 127.0.0.1\nHostKey {d / 'host'}\n"
            f"PidFile {d / 'sshd.pid'}\nAuthorizedKeysFile {d / 'authorized_keys'}\n"
            "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n"
            "StrictModes no\nPermitRootLogin prohibit-password\nAllowTcpForwarding yes\n")
        os.makedirs("/run/sshd", exist_ok=True)          # privilege separation dir
        self.log = open(d / "sshd.log", "wb")
        self.proc = subprocess.Popen([_which("sshd"), "-D", "-e", "-f", str(d / "config")],
                                     stderr=self.log)
        deadline = time.monotonic() + timeout
        while subprocess.run([*self.command, "127.0.0.1", "true"],
                             capture_output=True).returncode != 0:
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.stop()
                raise RuntimeError("private sshd did not come up: "
                                   f"{(d / 'sshd.log').read_text()[-2000:]}")
            time.sleep(0.2)
        return self

    def stop(self):
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None
            self.log.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
