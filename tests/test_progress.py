"""Progress: true totals and an ETA from the work this process does, also when a run resumes."""

from __future__ import annotations

import logging

import pytest

from tagsight import progress as progress_mod
from tagsight.progress import Progress


@pytest.fixture
def clock(monkeypatch):
    now = [100.0]
    monkeypatch.setattr(progress_mod.time, "monotonic", lambda: now[0])
    monkeypatch.setattr(progress_mod.sys.stderr, "isatty", lambda: False, raising=False)
    return now


def test_a_resumed_count_starts_at_its_earlier_work_and_times_only_the_new(clock):
    p = Progress(100, "pretrain", "step", initial=90)
    clock[0] += 5.0
    p.update(5)
    assert p.done == 95
    assert p.rate() == pytest.approx(1.0)
    assert p.line() == "pretrain: 95/100 step (1.0 step/s, ETA 5s)"


def test_a_fresh_count_logs_every_period_with_rate_and_eta(clock, caplog):
    p = Progress(10, "ingest", "photo", every=10.0)
    with caplog.at_level(logging.INFO, logger="tagsight.progress"):
        clock[0] += 4.0
        p.update(2)                       # before the period: no line
        clock[0] += 6.0
        p.update(3)
    assert [r.getMessage() for r in caplog.records] == ["ingest: 5/10 photo (0.5 photo/s, ETA 10s)"]
