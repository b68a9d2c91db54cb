"""acrsync.app.collector_paused: a cold instance builds its App without cyclic collections, then freezes
what it built (docs/BENCHMARKS.md, "Cold start")."""

from __future__ import annotations

import gc

import pytest

from acrsync.app import collector_paused


@pytest.fixture
def collections():
    seen: list[int] = []

    def watch(phase: str, info: dict) -> None:
        if phase == "start":
            seen.append(info["generation"])

    gc.callbacks.append(watch)
    try:
        yield seen
    finally:
        gc.callbacks.remove(watch)
        gc.unfreeze()
        gc.enable()


def _cycles(n: int) -> list[list]:
    out = []
    for _ in range(n):
        a: list = []
        a.append(a)
        out.append(a)
    return out


def test_nothing_is_collected_inside_and_what_was_built_is_frozen(collections):
    gc.enable()
    before = gc.get_freeze_count()
    with collector_paused():
        assert not gc.isenabled()
        kept = _cycles(50_000)                  # far past the first generation's threshold
        assert collections == []
    assert gc.isenabled()
    assert gc.get_freeze_count() >= before + len(kept)
    _cycles(50_000)
    assert collections, "the collector runs again afterwards"


def test_a_collector_that_was_off_stays_off(collections):
    gc.disable()
    with collector_paused():
        pass
    assert not gc.isenabled()


def test_it_restores_the_collector_when_the_build_fails(collections):
    gc.enable()
    with pytest.raises(RuntimeError), collector_paused():
        raise RuntimeError("config error")
    assert gc.isenabled()
