"""The compute node's state: what it attached, and its idempotency log."""
import time

from sqlalchemy import BigInteger, Boolean, Float, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from archipelago.bus.db import RequestMixin


class Base(DeclarativeBase):
    pass


class Request(RequestMixin, Base):
    """Idempotency log (action:request_id -> reply)."""


class Device(Base):
    __tablename__ = "devices"
    volume: Mapped[str] = mapped_column(String(89), primary_key=True)
    nas: Mapped[str] = mapped_column(String(63))
    uri: Mapped[str] = mapped_column(String(512))
    device: Mapped[str] = mapped_column(String(512))
    size: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    read_only: Mapped[bool] = mapped_column(Boolean, default=False)
    attached: Mapped[float] = mapped_column(Float, default=time.time)
