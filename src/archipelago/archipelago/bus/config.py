"""[rabbitmq]: how daemons and commands reach the broker.

The URL carries no password by default: production puts it in `password_file`
(mode 0400, written at install time with a generated password), never `guest`.
"""
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

from ..config import Option, Section, integer, path, string
from ..errors import ConfigError

RABBITMQ = Section("rabbitmq", "RabbitMQ broker of the control plane", [
    Option("url", "amqp://archipelago@localhost:5672/archipelago", string,
           "AMQP URL (amqp://USER[:PASSWORD]@HOST:PORT/VHOST)"),
    Option("password_file", Path("/etc/archipelago/rabbitmq.secret"), path,
           "file holding the password when the URL has none"),
    Option("amqp_heartbeat", 30, integer(0, 3600), "AMQP heartbeat in seconds (0 = off)"),
    Option("node_heartbeat", 5, integer(1, 3600),
           "seconds between this daemon's liveness heartbeats on the fanout exchange"),
    Option("timeout", 60, integer(1, 86400), "default seconds to wait for a reply"),
])


def broker_url(cfg):
    """The [rabbitmq] URL with the password from password_file filled in if needed."""
    sec = cfg.section(RABBITMQ)
    parts = urlsplit(sec.url)
    if parts.scheme not in ("amqp", "amqps"):
        raise ConfigError(f"{cfg.source}: [rabbitmq] url = {sec.url!r}: must be amqp:// or amqps://")
    if parts.password is not None or not parts.username:
        return sec.url
    pw_file = sec.password_file
    if not pw_file.exists():
        raise ConfigError(f"{cfg.source}: [rabbitmq] url has no password and the password "
                          f"file {pw_file} does not exist (set password_file, or put the "
                          "password in the URL)")
    try:
        password = pw_file.read_text().strip()
    except OSError as e:
        raise ConfigError(f"cannot read RabbitMQ password file {pw_file}: {e.strerror}") from None
    host = parts.netloc.rpartition("@")[2]
    netloc = f"{quote(parts.username, safe='')}:{quote(password, safe='')}@{host}"
    return urlunsplit(parts._replace(netloc=netloc))


def redact(url):
    """The URL without its password, for logs and error messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))
