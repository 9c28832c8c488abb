"""The NAS's record of each img_sync mapping's copy and syncs (table sync_jobs)."""
import time

from sqlalchemy import BigInteger, Float, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ..models import NAME, Base


class SyncJob(Base):
    __tablename__ = "sync_jobs"
    volume: Mapped[str] = mapped_column(String(NAME), primary_key=True)
    host: Mapped[str | None] = mapped_column(String(63), nullable=True)
    kind: Mapped[str | None] = mapped_column(String(16), nullable=True)  # periodic|final
    request_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    deadline: Mapped[float | None] = mapped_column(Float, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    base: Mapped[str | None] = mapped_column(String(NAME), nullable=True)  # last synced
    last_sync: Mapped[float | None] = mapped_column(Float, nullable=True)
    next_sync: Mapped[float | None] = mapped_column(Float, nullable=True)
    last_bytes: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    fetched: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    total: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    copied: Mapped[bool] = mapped_column(Integer, default=0)
    download_rate: Mapped[int | None] = mapped_column(BigInteger, nullable=True)  # told
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    started: Mapped[float] = mapped_column(Float, default=time.time)
