"""The roll's systemd units and SysV init scripts: well-formed, and the commands
they run are the ones the packages ship (the RPM test checks the paths)."""
import configparser
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
UNITS = sorted((ROOT / "roll/systemd").glob("*.service"))
INITS = sorted((ROOT / "roll/init.d").iterdir())
SCRIPTS = [*INITS, ROOT / "roll/frontend/archipelago-frontend-setup"]


@pytest.mark.parametrize("unit", UNITS, ids=lambda p: p.name)
def test_unit_sections(unit):
    cp = configparser.ConfigParser(strict=False, interpolation=None)
    cp.optionxform = str
    cp.read_string(unit.read_text())
    assert cp.sections() == ["Unit", "Service", "Install"]
    assert cp["Service"]["ExecStart"].startswith("/")
    assert cp["Install"]["WantedBy"] == "multi-user.target"
    assert cp["Unit"]["Description"]


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_scripts_parse_and_are_executable(script):
    assert subprocess.run(["sh", "-n", str(script)], capture_output=True).returncode == 0
    assert script.stat().st_mode & 0o111


@pytest.mark.parametrize("script", INITS, ids=lambda p: p.name)
def test_init_script_headers_and_usage(script):
    text = script.read_text()
    assert re.search(r"^# chkconfig: 2345 \d+ \d+$", text, re.M)
    assert f"# Provides:          {script.name}" in text
    for verb in ("start)", "stop)", "status)", "restart"):
        assert verb in text


def test_peer_supervisor_commands():
    unit = (ROOT / "roll/systemd/archipelago.service").read_text()
    conf = "-c /etc/archipelago/archipelago.conf"
    assert f"ExecStart=/usr/bin/archipelago {conf} start" in unit
    assert f"ExecStop=/usr/bin/archipelago {conf} stop" in unit
    assert "RuntimeDirectoryPreserve=yes" in unit
    init = (ROOT / "roll/init.d/archipelago").read_text()
    assert 'ARCHIPELAGO=/usr/bin/archipelago' in init and '"$ARCHIPELAGO" -c "$CONF" status' in init
