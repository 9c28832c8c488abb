"""Shared test policy.

A test that needs a missing tool or service skips on a laptop and fails under CI
(CI=true): `require("nbdinfo")` or `require_service(ok, "RabbitMQ")`.
"""
import os
import shutil

import pytest

CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require_service(ok, what):
    """Skip locally, fail under CI, when `what` is not available."""
    if ok:
        return
    if CI:
        pytest.fail(f"{what} is required under CI but is not available")
    pytest.skip(f"{what} not available")


def require(*commands):
    """The external commands a test needs (e.g. 'nbdinfo', 'qemu-img')."""
    for cmd in commands:
        require_service(shutil.which(cmd) is not None, f"command {cmd!r}")


@pytest.fixture
def run_dir(tmp_path, monkeypatch):
    """A private ARCHIPELAGO_RUN_DIR for the test's node(s)."""
    d = tmp_path / "run"
    d.mkdir()
    monkeypatch.setenv("ARCHIPELAGO_RUN_DIR", str(d))
    return d
