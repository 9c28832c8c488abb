"""The ObjectStore contract against the in-memory twin."""
import pytest
from store_contract import *  # noqa: F403

from archipelago.store.memory import MemoryStore


@pytest.fixture
def store():
    return MemoryStore()
