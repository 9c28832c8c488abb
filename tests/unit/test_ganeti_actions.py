"""ExtStorage actions with an injected runner: the exact vlmc argv per action."""
import io
import json

import pytest
from archipelago_ganeti import env
from archipelago_ganeti.main import run
from archipelago_ganeti.vlmc import Vlmc, device_of

from archipelago.process import CommandFailed, Result

VOL = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0.ext.disk0"


class FakeRunner:
    """Records argv; answers showmapped from `mapped`; fails commands in `fail`."""

    def __init__(self, mapped=None, fail=None):
        self.calls = []
        self.mapped = mapped or {}
        self.fail = fail or {}

    def __call__(self, argv, check=True, **kw):
        self.calls.append(argv[1:])
        sub = argv[1]
        if sub in self.fail:
            res = Result(argv, 1, "", self.fail[sub])
            if check:
                raise CommandFailed(f"vlmc {sub}: exit 1: {self.fail[sub]}", rc=1,
                                    stderr=self.fail[sub])
            return res
        if sub == "showmapped":
            recs = [{"volume": v, "device": d} for v, d in self.mapped.items()]
            return Result(argv, 0, json.dumps(recs))
        if sub == "map":
            self.mapped[argv[2]] = "/dev/nbd3"
            return Result(argv, 0, "/dev/nbd3\n")
        return Result(argv, 0, "")


def call(action, runner, **environ):
    out, err = io.StringIO(), io.StringIO()
    rc = run(action, {"VOL_NAME": VOL, **environ}, Vlmc("/usr/bin/vlmc", run=runner),
             out=out, err=err)
    return rc, out.getvalue(), err.getvalue()


def test_create_passes_size_in_mib():
    r = FakeRunner()
    assert call("create", r, VOL_SIZE="1024") == (0, "", "")
    assert r.calls == [["create", VOL, "--size", "1024M"]]


def test_create_from_origin_with_object_size():
    r = FakeRunner()
    rc, _, err = call("create", r, VOL_SIZE="2048", EXTP_ORIGIN="debian/12")
    assert rc == 1 and "invalid" in err
    assert call("create", r, VOL_SIZE="2048", EXTP_ORIGIN="debian12-image")[0] == 0
    assert r.calls[-1][-2:] == ["--snap", "debian12-image"]
    rc, _, err = call("create", r, VOL_SIZE="2048", EXTP_ORIGIN="debian12@base",
                      EXTP_OBJECT_SIZE="4M")
    assert (rc, err) == (0, "")
    assert r.calls[-1] == ["create", VOL, "--size", "2048M", "--snap", "debian12@base",
                           "--object-size", str(4 << 20)]


def test_attach_maps_once_and_is_idempotent():
    r = FakeRunner()
    assert call("attach", r) == (0, "/dev/nbd3\n", "")
    assert call("attach", r) == (0, "/dev/nbd3\n", "")
    assert [c[0] for c in r.calls] == ["showmapped", "map", "showmapped"]


def test_detach_is_idempotent():
    r = FakeRunner(mapped={VOL: "/dev/nbd1"})
    assert call("detach", r) == (0, "", "")
    assert r.calls == [["showmapped", "--json"], ["unmap", VOL]]
    r = FakeRunner()
    assert call("detach", r) == (0, "", "")
    assert r.calls == [["showmapped", "--json"]]


def test_grow_needs_a_larger_size():
    r = FakeRunner()
    assert call("grow", r, VOL_SIZE="1024", VOL_NEW_SIZE="3072")[0] == 0
    assert r.calls == [["resize", VOL, "3072M"]]
    rc, _, err = call("grow", r, VOL_SIZE="1024", VOL_NEW_SIZE="512")
    assert rc == 1 and "VOL_NEW_SIZE" in err and err.count("\n") == 1


def test_snapshot_open_close():
    r = FakeRunner()
    assert call("snapshot", r, VOL_SNAPSHOT_NAME=VOL + ".snap", VOL_SNAPSHOT_SIZE="10")[0] == 0
    assert call("open", r, VOL_OPEN_EXCLUSIVE="True")[0] == 0
    assert call("open", r, VOL_OPEN_EXCLUSIVE="False")[0] == 0
    assert call("close", r)[0] == 0
    assert r.calls == [["snapshot", VOL, VOL + ".snap"], ["open", VOL], ["info", VOL],
                       ["close", VOL]]


def test_remove_of_a_missing_volume_succeeds_other_failures_do_not():
    r = FakeRunner(fail={"remove": "volume x not found"})
    assert call("remove", r)[0] == 0
    r = FakeRunner(fail={"remove": "volume is mapped on compute-0-1"})
    rc, out, err = call("remove", r)
    assert rc == 1 and out == "" and "mapped on compute-0-1" in err


def test_setinfo_and_verify_run_no_commands():
    r = FakeRunner()
    assert call("setinfo", r, VOL_METADATA="originstname+vm1")[0] == 0
    assert call("verify", r)[0] == 0
    assert r.calls == []


@pytest.mark.parametrize("environ, text", [
    ({"VOL_NAME": ""}, "VOL_NAME is not set"),
    ({"VOL_NAME": "../etc/passwd"}, "invalid volume name"),
    ({"EXTP_COLOUR": "red"}, "unknown ExtStorage parameter"),
    ({"VOL_SIZE": "ten"}, "VOL_SIZE"),
    ({"VOL_OPEN_EXCLUSIVE": "maybe"}, "VOL_OPEN_EXCLUSIVE"),
])
def test_bad_environment_is_one_line_on_stderr(environ, text):
    r = FakeRunner()
    rc, out, err = call("create", r, **{"VOL_SIZE": "10", **environ})
    assert rc == 1 and out == "" and text in err and err.count("\n") == 1
    assert r.calls == []


def test_runner_failure_is_reported():
    r = FakeRunner(fail={"map": "nbd: no free device"})
    rc, out, err = call("attach", r)
    assert (rc, out) == (1, "") and "no free device" in err


def test_parse_collects_every_variable():
    req = env.parse("grow", {"VOL_NAME": VOL, "VOL_SIZE": "10", "VOL_NEW_SIZE": "20",
                             "EXTP_ORIGIN": "img1@v2"})
    assert (req.size_mib, req.new_size_mib, req.params) == (10, 20, {"origin": "img1@v2"})


def test_device_of_accepts_list_and_dict_forms():
    assert device_of([{"name": "a", "dev": "/dev/loop1"}], "a") == "/dev/loop1"
    assert device_of({"a": {"device": "/dev/nbd0"}}, "a") == "/dev/nbd0"
    assert device_of({"mapped": [{"volume": "a", "device": "/dev/nbd2"}]}, "a") == "/dev/nbd2"
    assert device_of({"a": "/dev/nbd4"}, "a") == "/dev/nbd4"
    assert device_of([], "a") is None
    assert device_of([{"volume": "a", "device": "/dev/nbd1", "alive": False}], "a") is None


def test_backup_export_snapshot_disk_is_vol_at_snap():
    # gnt-backup export: snapshot VOL as VOL.snap, then attach/detach/remove "VOL.snap".
    snap = VOL + ".snap"
    r = FakeRunner()
    assert call("snapshot", r, VOL_SNAPSHOT_NAME=snap, VOL_SNAPSHOT_SIZE="64")[0] == 0
    out, err = io.StringIO(), io.StringIO()
    for action in ("attach", "detach", "remove"):
        assert run(action, {"VOL_NAME": snap}, Vlmc("/usr/bin/vlmc", run=r), out=out,
                   err=err) == 0, err.getvalue()
    target = f"{VOL}@{snap}"
    assert r.calls == [["snapshot", VOL, snap], ["showmapped", "--json"], ["map", target],
                       ["showmapped", "--json"], ["unmap", target], ["remove", target]]
    assert out.getvalue() == "/dev/nbd3\n"
