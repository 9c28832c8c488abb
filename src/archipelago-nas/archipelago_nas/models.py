"""The NAS state: volumes, mappings with their transitions, attributes, known nodes.

Times are UNIX epoch seconds (floats), portable across SQLite, MySQL and PostgreSQL.
"""
import time

from sqlalchemy import BigInteger, Boolean, Float, ForeignKey, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from archipelago.bus.db import RequestMixin

NAME = 89        # archipelago.names.NAME_MAX
HOST = 63


class Base(DeclarativeBase):
    pass


class Request(RequestMixin, Base):
    """Idempotency log (action:request_id -> reply)."""


class Volume(Base):
    __tablename__ = "volumes"
    name: Mapped[str] = mapped_column(String(NAME), primary_key=True)
    pool: Mapped[str] = mapped_column(String(NAME))
    size: Mapped[int] = mapped_column(BigInteger)
    created: Mapped[float] = mapped_column(Float, default=time.time)


class Mapping(Base):
    """Where a volume is mapped and in which state; the pending requester, if any."""

    __tablename__ = "mappings"
    volume: Mapped[str] = mapped_column(ForeignKey("volumes.name"), primary_key=True)
    state: Mapped[str] = mapped_column(String(20), default="unmapped")
    remotehost: Mapped[str | None] = mapped_column(String(HOST), nullable=True)
    remotepool: Mapped[str | None] = mapped_column(String(NAME), nullable=True)
    sync: Mapped[bool] = mapped_column(Boolean, default=False)
    uri: Mapped[str | None] = mapped_column(String(512), nullable=True)
    device: Mapped[str | None] = mapped_column(String(512), nullable=True)
    request_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    reply_to: Mapped[str | None] = mapped_column(String(255), nullable=True)
    correlation_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    deadline: Mapped[float | None] = mapped_column(Float, nullable=True)
    since: Mapped[float] = mapped_column(Float, default=time.time)


class Transition(Base):
    """Every state change of every mapping, with its time and reason."""

    __tablename__ = "transitions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    volume: Mapped[str] = mapped_column(String(NAME), index=True)
    old: Mapped[str] = mapped_column(String(20))
    new: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str] = mapped_column(Text)
    at: Mapped[float] = mapped_column(Float, default=time.time)


class VolumeAttr(Base):
    """Per-volume sync attributes; no foreign key, so they may be set before first use."""

    __tablename__ = "volume_attrs"
    volume: Mapped[str] = mapped_column(String(NAME), primary_key=True)
    attr: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[str] = mapped_column(String(255))


class NasAttr(Base):
    __tablename__ = "nas_attrs"
    attr: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(1024))


class Peer(Base):
    """The last heartbeat of every node (the cluster listing)."""

    __tablename__ = "nodes"
    name: Mapped[str] = mapped_column(String(HOST), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))
    version: Mapped[str] = mapped_column(String(32))
    capacity: Mapped[int] = mapped_column(BigInteger, default=0)
    free: Mapped[int] = mapped_column(BigInteger, default=0)
    load: Mapped[float] = mapped_column(Float, default=0.0)
    interval: Mapped[float] = mapped_column(Float, default=5.0)
    last_seen: Mapped[float] = mapped_column(Float, default=time.time)


class Image(Base):
    """A read-only image imported into a pool (rocks add host storageimg) and the state
    of its import: importing -> ready, or error (with the reason)."""

    __tablename__ = "images"
    name: Mapped[str] = mapped_column(String(NAME), primary_key=True)
    pool: Mapped[str] = mapped_column(String(NAME))
    source: Mapped[str] = mapped_column(Text)
    format: Mapped[str] = mapped_column(String(16))
    size: Mapped[int] = mapped_column(BigInteger)              # bytes (virtual size)
    state: Mapped[str] = mapped_column(String(16), default="importing")
    step: Mapped[str | None] = mapped_column(String(32), nullable=True)
    done: Mapped[int] = mapped_column(BigInteger, default=0)   # bytes read so far
    stored: Mapped[int] = mapped_column(BigInteger, default=0)  # bytes of its objects
    added: Mapped[int] = mapped_column(BigInteger, default=0)   # new bytes in the store
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created: Mapped[float] = mapped_column(Float, default=time.time)
    finished: Mapped[float | None] = mapped_column(Float, nullable=True)
