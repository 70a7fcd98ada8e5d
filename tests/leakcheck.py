"""Shared by the tests of compiled helpers: whether repeating a call leaves memory behind."""
from __future__ import annotations

import tracemalloc
from typing import Callable


def growth(run: Callable[[int], None], times: int = 20000) -> int:
    """Bytes still traced after ``run(times)`` beyond a short warmed-up run: about 0 when
    nothing leaks (a leak of one small object per call shows as hundreds of kB)."""
    run(1000)
    tracemalloc.start()
    try:
        run(100)
        before = tracemalloc.get_traced_memory()[0]
        run(times)
        return tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
