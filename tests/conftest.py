"""Fixtures shared by the test modules: the shipped knowledge base and a reasoner over it,
one of each per module (a module may define its own instead)."""
from __future__ import annotations

import pytest

from engine import Reasoner, load_kb


@pytest.fixture(scope="module")
def kb():
    return load_kb()


@pytest.fixture(scope="module")
def reasoner(kb):
    with Reasoner(kb) as r:
        yield r
