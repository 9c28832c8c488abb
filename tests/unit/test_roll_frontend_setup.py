"""archipelago-frontend-setup (the frontend's one-shot unit) against stand-in
rabbitmqctl, mysql and python: vhost, user, permissions, no guest, database,
schema; a second run changes nothing but the password."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "roll/frontend/archipelago-frontend-setup"

RABBITMQCTL = '''#!{py}
import json, sys
f = {state!r}
st = json.load(open(f))
st["calls"].append(sys.argv[1:])
cmd, args = sys.argv[1], sys.argv[2:]
if cmd == "-q":
    cmd, args = args[0], args[1:]
if cmd == "list_vhosts": print("\\n".join(st["vhosts"]))
elif cmd == "list_users": print("\\n".join(u + "\\t[]" for u in st["users"]))
elif cmd == "add_vhost": st["vhosts"].append(args[0])
elif cmd == "add_user": st["users"][args[0]] = args[1]
elif cmd == "change_password": st["users"][args[0]] = args[1]
elif cmd == "delete_user": del st["users"][args[0]]
elif cmd == "set_permissions": st["perms"] = args
json.dump(st, open(f, "w"))
'''


@pytest.fixture
def env(tmp_path):
    state = tmp_path / "rabbit.json"
    state.write_text(json.dumps({"vhosts": ["/"], "users": {"guest": "guest"}, "calls": []}))
    fakes = {
        "rabbitmqctl": RABBITMQCTL.format(py=sys.executable, state=str(state)),
        "mysql": f"#!/bin/sh\necho \"$@\" >> {tmp_path}/mysql.args\ncat >> {tmp_path}/mysql.sql\n",
        "python": f"#!/bin/sh\necho \"$@\" >> {tmp_path}/python.args\n",
    }
    for name, text in fakes.items():
        (tmp_path / name).write_text(text)
        (tmp_path / name).chmod(0o755)
    (tmp_path / "amqp.pw").write_text("s3cret-amqp\n")
    (tmp_path / "db.pw").write_text("s3cret-db\n")
    return tmp_path, state, {
        "PATH": "/usr/bin:/bin", "RABBITMQCTL": str(tmp_path / "rabbitmqctl"),
        "ROCKS_MYSQL": str(tmp_path / "mysql"), "ROCKS_MYCNF": "/dev/null",
        "PYTHON": str(tmp_path / "python"), "AMQP_PWFILE": str(tmp_path / "amqp.pw"),
        "DB_PWFILE": str(tmp_path / "db.pw")}


def setup(environ):
    return subprocess.run(["sh", str(SCRIPT)], env=environ, capture_output=True, text=True,
                          timeout=60)


def test_first_and_second_run(env):
    d, state, environ = env
    r = setup(environ)
    assert r.returncode == 0, r.stderr
    st = json.loads(state.read_text())
    assert "archipelago" in st["vhosts"]
    assert st["users"] == {"archipelago": "s3cret-amqp"}  # guest gone
    assert st["perms"] == ["-p", "archipelago", "archipelago", ".*", ".*", ".*"]
    sql = (d / "mysql.sql").read_text()
    assert "CREATE DATABASE IF NOT EXISTS archipelago;" in sql and "s3cret-db" in sql
    assert "open_db()" in (d / "python.args").read_text()
    (d / "amqp.pw").write_text("rotated\n")
    assert setup(environ).returncode == 0
    st = json.loads(state.read_text())
    assert st["vhosts"].count("archipelago") == 1
    assert st["users"] == {"archipelago": "rotated"}
    assert ["delete_user", "guest"] in st["calls"]
    assert sum(c == ["delete_user", "guest"] for c in st["calls"]) == 1


def test_missing_password_file_is_a_clear_error(env):
    _, _, environ = env
    r = setup({**environ, "AMQP_PWFILE": "/nonexistent"})
    assert r.returncode == 1 and "/nonexistent is missing" in r.stderr
