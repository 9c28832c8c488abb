"""[database] and the SQLAlchemy plumbing the daemons share.

Each daemon keeps its schema in its own `models.py`; this module makes the engine
(SQLite by default, any SQLAlchemy URL by config) and the per-message session scope.
SQLAlchemy exceptions are wrapped here into BackendError.
"""
import contextlib
import logging
import time

from sqlalchemy import Float, String, Text, create_engine, event
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Mapped, mapped_column, sessionmaker

from ..config import Option, Section, string
from ..errors import BackendError

log = logging.getLogger(__name__)

DATABASE = Section("database", "State database of a daemon (SQLAlchemy URL)", [
    Option("url", "", string,
           "SQLAlchemy URL, e.g. mysql+pymysql://user@frontend/archipelago; "
           "empty = SQLite file in the node's state_dir"),
])


class RequestMixin:
    """Idempotency log: one row per (action, request_id) that ran (or is running)."""

    __tablename__ = "requests"
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    action: Mapped[str] = mapped_column(String(40))
    reply: Mapped[str | None] = mapped_column(Text, nullable=True)   # None = in progress
    created: Mapped[float] = mapped_column(Float, default=time.time)


def _sqlite_pragmas(dbapi_conn, _record):
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=5000")
    cur.close()


class Database:
    """An engine plus a session factory; `scope()` is the unit of work."""

    def __init__(self, url, metadata):
        try:
            self.engine = create_engine(url, future=True)
            if self.engine.dialect.name == "sqlite":
                event.listen(self.engine, "connect", _sqlite_pragmas)
            metadata.create_all(self.engine)
        except SQLAlchemyError as e:
            raise BackendError(f"cannot open the state database {url}: {e}") from None
        self.factory = sessionmaker(self.engine, expire_on_commit=False)

    @contextlib.contextmanager
    def scope(self):
        """A session committed on success, rolled back on any exception."""
        session = self.factory()
        try:
            yield session
            session.commit()
        except SQLAlchemyError as e:
            session.rollback()
            raise BackendError(f"state database error: {e}") from None
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def dispose(self):
        self.engine.dispose()


def default_url(cfg, state_dir, name):
    url = cfg.section(DATABASE).url
    return url or f"sqlite:///{state_dir}/{name}.db"
