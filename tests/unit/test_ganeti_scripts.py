"""The provider scripts driven exactly as Ganeti drives them.

Each action is its own executable in the provider directory, run with a clean
environment holding only Ganeti's variables (no PATH, no HOME). `vlmc` is a
stand-in that keeps volumes in a JSON file, so the full
create/attach/snapshot/grow/detach/remove cycle runs without peers.
"""
import json
import subprocess
import sys
from pathlib import Path

import pytest
from archipelago_ganeti.env import ACTIONS, PARAMETERS
from archipelago_ganeti.provider import install

ROOT = Path(__file__).resolve().parents[2]
VOL = "5a0c6f1e-0d7b-4c55-9b1e-2f3c4d5e6f70.ext.disk0"

FAKE_VLMC = '''#!{python}
import json, sys
state_file = {state!r}
st = json.load(open(state_file))
st["calls"].append(sys.argv[1:])
st["path"] = __import__("os").environ.get("PATH", "")
vols, mapped = st["volumes"], st["mapped"]
cmd, args = sys.argv[1], sys.argv[2:]
def fail(msg):
    json.dump(st, open(state_file, "w"))
    sys.stderr.write("vlmc: " + msg + "\\n")
    sys.exit(1)
if cmd == "create":
    if args[0] in vols: fail("volume exists")
    vols[args[0]] = {{"size": args[args.index("--size") + 1], "snaps": []}}
elif cmd == "remove":
    if args[0] not in vols: fail("volume " + args[0] + " not found")
    if args[0] in mapped: fail("volume is mapped")
    del vols[args[0]]
elif cmd == "resize":
    vols[args[0]]["size"] = args[1]
elif cmd == "snapshot":
    vols[args[0]]["snaps"].append(args[1])
elif cmd == "map":
    mapped.setdefault(args[0], "/dev/nbd%d" % len(mapped))
    print(mapped[args[0]])
elif cmd == "unmap":
    mapped.pop(args[0], None)
elif cmd == "showmapped":
    print(json.dumps([{{"volume": v, "device": d}} for v, d in mapped.items()]))
elif cmd == "info":
    if args[0] not in vols: fail("volume " + args[0] + " not found")
elif cmd not in ("open", "close"):
    fail("unknown command " + cmd)
json.dump(st, open(state_file, "w"))
'''


@pytest.fixture
def provider(tmp_path):
    state = tmp_path / "vlmc.json"
    state.write_text(json.dumps({"volumes": {}, "mapped": {}, "calls": []}))
    vlmc = tmp_path / "vlmc"
    vlmc.write_text(FAKE_VLMC.format(python=sys.executable, state=str(state)))
    vlmc.chmod(0o755)
    pp = [ROOT / "src/archipelago-ganeti", ROOT / "src/archipelago"]
    d = install(tmp_path / "archipelago", python=sys.executable, vlmc=vlmc, pythonpath=pp)
    return d, state


def ganeti(provider, action, **environ):
    """Run one script the way Ganeti's node daemon does: clean env, no arguments."""
    d, _ = provider
    return subprocess.run([str(d / action)], env={"VOL_NAME": VOL, **environ},
                          capture_output=True, text=True, timeout=60, cwd="/")


def state(provider):
    return json.loads(provider[1].read_text())


def test_layout(provider):
    d, _ = provider
    for action in ACTIONS:
        assert (d / action).is_symlink() and (d / action).stat().st_mode & 0o111
    names = [line.split()[0] for line in (d / "parameters.list").read_text().splitlines()]
    assert names == list(PARAMETERS)


def test_full_cycle(provider):
    p = provider
    assert ganeti(p, "create", VOL_SIZE="1024").returncode == 0
    assert state(p)["volumes"][VOL]["size"] == "1024M"
    first = ganeti(p, "attach", VOL_SIZE="1024")
    again = ganeti(p, "attach", VOL_SIZE="1024")
    assert (first.returncode, again.returncode) == (0, 0)
    assert first.stdout == again.stdout == "/dev/nbd0\n"
    assert ganeti(p, "open", VOL_OPEN_EXCLUSIVE="False").returncode == 0
    assert ganeti(p, "open", VOL_OPEN_EXCLUSIVE="True").returncode == 0
    snap = ganeti(p, "snapshot", VOL_SNAPSHOT_NAME=VOL + ".snap", VOL_SNAPSHOT_SIZE="1024")
    assert snap.returncode == 0 and state(p)["volumes"][VOL]["snaps"] == [VOL + ".snap"]
    assert ganeti(p, "grow", VOL_SIZE="1024", VOL_NEW_SIZE="2048").returncode == 0
    assert state(p)["volumes"][VOL]["size"] == "2048M"
    assert ganeti(p, "setinfo", VOL_METADATA="originstname+inst1").returncode == 0
    assert ganeti(p, "verify").returncode == 0
    assert ganeti(p, "close").returncode == 0
    for _ in range(2):
        r = ganeti(p, "detach")
        assert (r.returncode, r.stdout, r.stderr) == (0, "", "")
    assert state(p)["mapped"] == {}
    assert ganeti(p, "remove").returncode == 0
    assert ganeti(p, "remove").returncode == 0  # already gone: still success
    assert state(p)["volumes"] == {}
    assert ["map", VOL] in state(p)["calls"] and ["unmap", VOL] in state(p)["calls"]


def test_failure_is_exit_1_with_one_line(provider):
    r = ganeti(provider, "create")  # no VOL_SIZE
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr.count("\n") == 1 and "VOL_SIZE is not set" in r.stderr
    assert ganeti(provider, "create", VOL_SIZE="8").returncode == 0
    r = ganeti(provider, "create", VOL_SIZE="8")
    assert r.returncode == 1 and "volume exists" in r.stderr


def test_children_get_a_path_in_ganetis_clean_environment(provider):
    # vlmc runs helpers (nbdfuse, losetup) by name: the provider defines PATH itself.
    assert ganeti(provider, "attach").returncode == 0
    assert "/usr/bin" in state(provider)["path"].split(":")


def test_usage(provider):
    d, _ = provider
    r = subprocess.run([str(d / "attach"), "--help"], env={}, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0 and "VOL_NAME" in r.stdout
    r = subprocess.run([str(d / "attach"), "x", "y"], env={}, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 2 and "usage" in r.stderr
    r = subprocess.run([str(d / "verify"), "parameters"], env={"VOL_NAME": VOL},
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
