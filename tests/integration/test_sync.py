"""vlmc send/receive between two real nodes (own segments, own stores, own state).

Node A is the source, node B the target; every test uses its own volume names.
"""
import contextlib
import json
import os
import random
import signal
import stat
import subprocess
import sys
import time

import pytest
from archipelago_node import Node
from conftest import require, require_service

MiB = 1 << 20
K64 = 64 << 10
SECRET = "s3cret-for-the-sync-tests-0123456789"


@pytest.fixture(scope="module")
def nodes(tmp_path_factory):
    root = tmp_path_factory.mktemp("sync")
    token = root / "sync.token"
    token.write_text(SECRET + "\n")
    token.chmod(0o600)
    extra = f"""[sync]
auth_token_file = {token}
checkpoint_interval = 0.2
connect_timeout = 20
"""
    a = Node(root, "synca", shared=root / "store-a", extra=extra)
    b = Node(root, "syncb", shared=root / "store-b", extra=extra)
    try:
        a.start()
        b.start()
        yield a, b
    finally:
        a.stop()
        b.stop()


def popen(node, *args, stdin=None, stdout=subprocess.PIPE, env=None):
    cmd = [sys.executable, "-m", "archipelago.cli.vlmc", "-c", str(node.conf),
           *map(str, args)]
    return subprocess.Popen(cmd, stdin=stdin, stdout=stdout, stderr=subprocess.PIPE,
                            env=env or node.env())


def pipe(a, send_args, b, recv_args):
    """`vlmc send ... -o - | vlmc receive ...`; (send rc, receive CompletedProcess)."""
    s = popen(a, "send", *send_args, "-o", "-")
    r = popen(b, "receive", *recv_args, stdin=s.stdout)
    s.stdout.close()
    out, err = r.communicate(timeout=180)
    s.wait(timeout=60)
    r.out, r.err = out.decode(), err.decode()
    return s.returncode, r


def export(node, spec):
    return node.vlmc("export", spec, "-").stdout


def scribble(node, vol, n, seed, size):
    """n scattered 64 KiB writes; returns the bytes written."""
    rng = random.Random(seed)
    with node.client() as c, c.volume(vol) as v:
        for i in rng.sample(range(size // K64), n):
            v.pwrite(rng.randbytes(K64), i * K64)
        v.flush()
    return n * K64


def base(a, b, vol, size=32 * MiB, data=4 * MiB):
    """vol@s1 on A, received by B."""
    a.vlmc("create", vol, "--size", f"{size // MiB}M")
    with a.client() as c, c.volume(vol) as v:
        v.pwrite(os.urandom(data), MiB)
        v.flush()
    a.vlmc("snapshot", vol, "s1")
    rc, r = pipe(a, [f"{vol}@s1"], b, [vol])
    assert rc == 0 and r.returncode == 0, r.err
    assert export(b, f"{vol}@s1") == export(a, f"{vol}@s1")


def test_pipe_full_then_incremental(nodes):
    a, b = nodes
    base(a, b, "pv")
    changed = scribble(a, "pv", 40, 1, 32 * MiB)
    a.vlmc("snapshot", "pv", "s2")
    diff = json.loads(a.vlmc("diff", "pv@s1", "pv@s2", "--json").out)
    assert diff["changed"] == changed                  # sub-object granularity
    rc, r = pipe(a, ["pv@s2", "--from", "s1"], b, ["pv", "--json"])
    assert rc == 0 and r.returncode == 0, r.err
    res = json.loads(r.out)
    assert res["ok"] and res["snapshot"] == "s2" and res["data_bytes"] == changed
    assert res["wire_bytes"] <= 1.01 * changed + 4096
    assert export(b, "pv@s2") == export(a, "pv@s2") == export(b, "pv")
    info = json.loads(b.vlmc("info", "pv@s2", "--json").out)
    assert info["guid"] == json.loads(a.vlmc("info", "pv@s2", "--json").out)["guid"]


def _state(node, vol):
    p = node.root / "state" / "sync" / f"recv-{vol}.json"
    try:
        return json.loads(p.read_text())
    except (OSError, ValueError):
        return None


def test_corrupt_and_truncated_files_change_nothing(nodes, tmp_path):
    a, b = nodes
    base(a, b, "cv")
    scribble(a, "cv", 30, 2, 32 * MiB)
    a.vlmc("snapshot", "cv", "s2")
    f = tmp_path / "s2.stream"
    a.vlmc("send", "cv@s2", "--from", "s1", "-o", f)
    raw = f.read_bytes()
    before = export(b, "cv"), b.vlmc("info", "cv", "--json").out
    bad = bytearray(raw)
    bad[len(raw) // 2] ^= 0x10
    (tmp_path / "bad").write_bytes(bytes(bad))
    r = b.vlmc("receive", "cv", "-i", tmp_path / "bad", check=False)
    assert r.returncode == 1 and "checksum mismatch" in r.err, r.err
    assert len(r.err.strip().splitlines()) == 1 and "resume with: vlmc send --resume" in r.err
    assert (export(b, "cv"), b.vlmc("info", "cv", "--json").out) == before
    assert "aborted" in b.vlmc("receive", "cv", "--abort").out

    (tmp_path / "short").write_bytes(raw[:len(raw) * 2 // 3])
    r = b.vlmc("receive", "cv", "-i", tmp_path / "short", check=False)
    assert r.returncode == 1 and "ended" in r.err
    assert (export(b, "cv"), b.vlmc("info", "cv", "--json").out) == before
    token = b.vlmc("receive", "cv", "--token").out.strip()
    assert token in r.err
    a.vlmc("send", "--resume", token, "-o", tmp_path / "rest")
    assert (tmp_path / "rest").stat().st_size < len(raw)
    b.vlmc("receive", "cv", "-i", tmp_path / "rest")
    assert export(b, "cv@s2") == export(a, "cv@s2")
    assert b.vlmc("receive", "cv", "--token", check=False).returncode == 1


def _kill_midstream(a, b, vol, victim):
    """Pipe vol@s1 -> vol@s2 at 4 MiB/s and kill -9 `victim` once B has a checkpoint."""
    s = popen(a, "send", f"{vol}@s2", "--from", "s1", "-o", "-", "--limit", "4M")
    r = popen(b, "receive", vol, stdin=s.stdout)
    s.stdout.close()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        st = _state(b, vol)
        if st and st["offset"] > 0:
            break
        time.sleep(0.05)
    else:
        pytest.fail("the receiver never checkpointed")
    os.kill((r if victim == "receiver" else s).pid, signal.SIGKILL)
    _, rerr = r.communicate(timeout=60)
    s.wait(timeout=60)
    return s.returncode, r.returncode, rerr.decode()


@pytest.mark.parametrize("victim", ["receiver", "sender"])
def test_kill9_midstream_then_resume(nodes, victim):
    a, b = nodes
    vol = f"k{victim[0]}"
    base(a, b, vol)
    scribble(a, vol, 200, 3, 32 * MiB)                     # 12.5 MiB: ~3 s at 4 MiB/s
    a.vlmc("snapshot", vol, "s2")
    before = export(b, vol), b.vlmc("info", vol, "--json").out
    src_rc, dst_rc, err = _kill_midstream(a, b, vol, victim)
    assert src_rc != 0 and dst_rc != 0
    if victim == "sender":
        assert "resume with: vlmc send --resume" in err
    assert (export(b, vol), b.vlmc("info", vol, "--json").out) == before
    token = b.vlmc("receive", vol, "--token").out.strip()
    rc, r = pipe(a, ["--resume", token], b, [vol, "--json"])
    assert rc == 0 and r.returncode == 0, r.err
    res = json.loads(r.out)
    assert res["resumed"] and res["snapshot"] == "s2"
    assert export(b, f"{vol}@s2") == export(a, f"{vol}@s2") == export(b, vol)


def test_base_mismatch_refused_then_force(nodes):
    a, b = nodes
    base(a, b, "bm")
    scribble(a, "bm", 10, 4, 32 * MiB)
    a.vlmc("snapshot", "bm", "s2")
    scribble(b, "bm", 3, 5, 32 * MiB)                      # the target moved on
    rc, r = pipe(a, ["bm@s2", "--from", "s1"], b, ["bm"])
    assert r.returncode == 1 and "modified since bm@s1" in r.err and "--force" in r.err
    assert "s2" not in b.vlmc("info", "bm", "--json").out
    rc, r = pipe(a, ["bm@s2", "--from", "s1"], b, ["bm", "--force"])
    assert rc == 0 and r.returncode == 0, r.err
    assert export(b, "bm") == export(a, "bm@s2")


def test_throttle_holds_within_10_percent(nodes, tmp_path):
    a, _b = nodes
    a.vlmc("create", "thr", "--size", "16M")
    with a.client() as c, c.volume("thr") as v:
        v.pwrite(os.urandom(8 * MiB), 0)
        v.flush()
    a.vlmc("snapshot", "thr", "s1")
    res = json.loads(a.vlmc("send", "thr@s1", "-o", tmp_path / "t", "--limit", "4M",
                            "--json").out)["sent"]
    rate = res["wire_bytes"] / res["seconds"]
    # The limiter guarantees the upper bound whatever the load; the lower one (the
    # 10 % both ways is checked with a fake clock in test_sync_format.py and measured
    # by bench_sync) is kept loose: a loaded machine may not reach 4 MiB/s.
    assert 0.5 * 4 * MiB <= rate <= 1.1 * 4 * MiB, rate


def _listen(b, vol, *extra):
    p = popen(b, "receive", vol, "--listen", "127.0.0.1:0", "--timeout", "60", *extra)
    line = p.stderr.readline().decode()
    assert "listening on" in line, line + p.stderr.read().decode()
    return p, int(line.rsplit(":", 1)[1])


def test_tcp_transport_with_auth(nodes):
    a, b = nodes
    a.vlmc("create", "tv", "--size", "16M")
    scribble(a, "tv", 20, 6, 16 * MiB)
    a.vlmc("snapshot", "tv", "s1")
    p, port = _listen(b, "tv")
    try:
        env = dict(a.env(), ARCHIPELAGO_SYNC_TOKEN="not-the-secret-at-all")
        bad = popen(a, "send", "tv@s1", "--to", f"127.0.0.1:{port}", "-t", "tcp", env=env)
        _, err = bad.communicate(timeout=60)
        assert bad.returncode == 1 and b"refused the credentials" in err
        r = a.vlmc("send", "tv@s1", "--to", f"127.0.0.1:{port}", "-t", "tcp", "--json")
        res = json.loads(r.out)
        assert res["ok"] and res["volume"] == "tv" and res["sent"]["records"] > 1
        _out, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
    finally:
        with contextlib.suppress(ProcessLookupError):
            p.kill()
    assert export(b, "tv@s1") == export(a, "tv@s1")
    # a refusal travels back over the connection
    a.vlmc("snapshot", "tv", "s2")
    p, port = _listen(b, "tv")
    r = a.vlmc("send", "tv@s2", "--to", f"127.0.0.1:{port}", "--volume", "other",
               check=False)
    assert r.returncode == 2 and "takes volume tv" in r.err
    p.kill()
    p.wait()


def _fake(tmp_path, name, body):
    f = tmp_path / name
    f.write_text("#!/bin/sh\n# stands in for the real tool: runs the remote side here\n"
                 "unset ARCHIPELAGO_CONF ARCHIPELAGO_RUN_DIR\n" + body)
    f.chmod(f.stat().st_mode | stat.S_IXUSR)
    return f


@pytest.mark.parametrize("kind", ["ssh", "bbcp"])
def test_ssh_and_bbcp_command_lines(nodes, tmp_path, kind):
    a, b = nodes
    vol = f"{kind}v"
    a.vlmc("create", vol, "--size", "8M")
    scribble(a, vol, 10, 7, 8 * MiB)
    a.vlmc("snapshot", vol, "s1")
    remote = f"{sys.executable} -m archipelago.cli.vlmc -c {b.conf}"
    if kind == "ssh":   # ssh [opts] HOST 'remote command'
        tool = _fake(tmp_path, "ssh", 'while [ "$1" != "nodeb" ]; do shift; done\n'
                     'shift\nexec sh -c "$*"\n')
    else:               # bbcp [opts] -N io 'SRC' 'HOST:DST'
        tool = _fake(tmp_path, "bbcp", 'while [ "$1" != "-N" ]; do shift; done\n'
                     'sh -c "$3" | sh -c "${4#nodeb:}"\n')
    conf = a.conf.read_text() + f"{kind}_command = {tool}\nremote_vlmc = {remote}\n"
    conf_path = tmp_path / "a.conf"
    conf_path.write_text(conf)
    env = dict(a.env(), ARCHIPELAGO_CONF=str(conf_path))
    p = subprocess.run([sys.executable, "-m", "archipelago.cli.vlmc", "-c", str(conf_path),
                        "send", f"{vol}@s1", "--to", "nodeb", "-t", kind, "--json"],
                       capture_output=True, env=env, timeout=120)
    assert p.returncode == 0, p.stderr.decode()
    assert json.loads(p.stdout)["ok"]
    assert export(b, f"{vol}@s1") == export(a, f"{vol}@s1")
    # the far side's refusal comes back as a one-line error
    p = subprocess.run([sys.executable, "-m", "archipelago.cli.vlmc", "-c", str(conf_path),
                        "send", f"{vol}@s1", "--to", "nodeb", "-t", kind],
                       capture_output=True, env=env, timeout=120)
    err = p.stderr.decode()
    assert p.returncode == 1 and "exists" in err and len(err.strip().splitlines()) == 1, err


def test_cli_errors_are_one_line(nodes):
    a, b = nodes
    for node, args, code in [
        (a, ["send", "nosuch@s"], 1), (a, ["send", "novol"], 2),
        (a, ["send", "x@y", "--resume", "garbage"], 2), (b, ["receive", "bad/name"], 2),
        (b, ["receive", "zz", "--token"], 1), (a, ["send", "x@s", "--limit", "fast"], 2),
        (b, ["receive", "zz", "--listen", "192.0.2.1:7450"], 1),
    ]:
        r = node.vlmc(*args, check=False, input=b"")
        assert r.returncode == code, (args, r.err)
        assert r.err.startswith("vlmc: error: ") and len(r.err.strip().splitlines()) == 1
    a.vlmc("create", "full", "--size", "4M")
    a.vlmc("snapshot", "full", "s1")
    r = a.vlmc("send", "full@s1", "-o", "/dev/full", check=False)
    assert r.returncode == 1 and "No space left" in r.err, r.err
    assert len(r.err.strip().splitlines()) == 1


@pytest.fixture
def sshd(tmp_path):
    """A private sshd on 127.0.0.1 (root, key only); yields (port, ssh command line)."""
    require("sshd", "ssh-keygen", "ssh")
    require_service(os.geteuid() == 0, "root (the private sshd)")
    import socket
    d = tmp_path / "sshd"
    d.mkdir()
    for key in ("host", "id"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", d / key],
                       check=True)
    (d / "authorized_keys").write_text((d / "id.pub").read_text())
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (d / "config").write_text(f"""Port {port}
ListenAddress 127.0.0.1
HostKey {d / 'host'}
PidFile {d / 'sshd.pid'}
AuthorizedKeysFile {d / 'authorized_keys'}
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PermitRootLogin prohibit-password
""")
    os.makedirs("/run/sshd", exist_ok=True)
    proc = subprocess.Popen([shutil_which("sshd"), "-D", "-e", "-f", d / "config"],
                            stderr=subprocess.PIPE)
    ssh = (f"ssh -i {d / 'id'} -p {port} -o BatchMode=yes -o LogLevel=ERROR "
           "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null")
    deadline = time.monotonic() + 20
    while subprocess.run([*ssh.split(), "root@127.0.0.1", "true"],
                         capture_output=True).returncode != 0:
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            pytest.fail(f"private sshd did not come up: {proc.stderr.read1().decode()}")
        time.sleep(0.2)
    yield port, ssh
    proc.kill()
    proc.wait()


def shutil_which(name):
    import shutil
    return shutil.which(name, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")


def test_ssh_transport_through_a_real_sshd(nodes, sshd, tmp_path):
    a, b = nodes
    _port, ssh = sshd
    a.vlmc("create", "rs", "--size", "8M")
    scribble(a, "rs", 10, 8, 8 * MiB)
    a.vlmc("snapshot", "rs", "s1")
    scribble(a, "rs", 5, 9, 8 * MiB)
    a.vlmc("snapshot", "rs", "s2")
    conf = tmp_path / "a.conf"
    conf.write_text(a.conf.read_text() + f"ssh_command = {ssh}\nremote_vlmc = "
                    f"{sys.executable} -m archipelago.cli.vlmc -c {b.conf}\n")
    for args in (["rs@s1"], ["rs@s2", "--from", "s1"]):
        p = subprocess.run([sys.executable, "-m", "archipelago.cli.vlmc", "-c", str(conf),
                            "send", *args, "--to", "root@127.0.0.1", "-t", "ssh"],
                           capture_output=True, env=a.env(), timeout=120)
        assert p.returncode == 0, p.stderr.decode()
    assert export(b, "rs@s2") == export(a, "rs@s2")
