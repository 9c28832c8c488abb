"""Frontend-side state: which NAS (and pool) serves each VM's disk (`rocks set host
vm nas`). A Rocks frontend keeps this in its MySQL database ([database] url); the
default is a SQLite file in the frontend's state_dir."""
from sqlalchemy import String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from archipelago import config
from archipelago.bus.db import Database, default_url
from archipelago.config import NODE


class Base(DeclarativeBase):
    pass


class VmNas(Base):
    __tablename__ = "vm_nas"
    vm: Mapped[str] = mapped_column(String(63), primary_key=True)
    nas: Mapped[str] = mapped_column(String(63))
    pool: Mapped[str | None] = mapped_column(String(89), nullable=True)


def open_db(cfg=None):
    cfg = cfg or config.load()
    state_dir = cfg.section(NODE).state_dir
    state_dir.mkdir(parents=True, exist_ok=True)
    return Database(default_url(cfg, state_dir, "frontend"), Base.metadata)
