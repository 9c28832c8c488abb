"""archipelago.process: the one runner for external commands."""
import logging

import pytest

from archipelago import process
from archipelago.errors import Timeout, Unavailable


def test_run_ok_and_output():
    res = process.run(["sh", "-c", "echo out; echo err >&2"])
    assert (res.rc, res.stdout, res.stderr) == (0, "out\n", "err\n")
    assert process.run(["cat"], input="abc").stdout == "abc"


def test_failure_raises_and_logs_masked(caplog):
    caplog.set_level(logging.DEBUG, logger="archipelago.process")
    with pytest.raises(process.CommandFailed) as e:
        process.run(["sh", "-c", "echo token=hunter2 >&2; exit 3", process.Secret("hunter2")])
    assert e.value.rc == 3 and "hunter2" in e.value.stderr
    assert "hunter2" not in str(e.value) and "***" in str(e.value)
    assert "hunter2" not in caplog.text and "exit 3" in caplog.text
    assert process.run(["false"], check=False).rc == 1


def test_missing_command_and_timeout():
    with pytest.raises(Unavailable, match="not found"):
        process.run(["no-such-command-xyz"])
    with pytest.raises(Timeout):
        process.run(["sleep", "5"], timeout=0.2)


def test_injectable_runner():
    seen = []

    def fake(argv, **kw):
        seen.append(argv)
        return process.Result(argv, 0, "/dev/loop7\n")

    with process.use(fake):
        assert process.run(["losetup", "--find", "--show", "x"]).stdout == "/dev/loop7\n"
    assert seen == [["losetup", "--find", "--show", "x"]]
    assert process.run(["true"]).rc == 0            # the real runner is back


def test_spawn():
    p = process.spawn(["sleep", "0.1"])
    assert p.wait(5) == 0
    with pytest.raises(Unavailable):
        process.spawn(["no-such-command-xyz"])


def test_which_without_path_searches_the_default_path(monkeypatch):
    # Ganeti runs ExtStorage scripts with a clean environment: no PATH at all.
    monkeypatch.delenv("PATH", raising=False)
    assert process.which("sh") is not None
