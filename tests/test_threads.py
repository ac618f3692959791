"""The engine's CPU threads follow the cores other processes leave free."""

from __future__ import annotations

import pytest
import torch

from ava.contracts.scoring import ScoreRequest
from ava.models import threads as threads_mod
from ava.models.engine import EngineConfig, LetterEngine
from ava.models.threads import ThreadGovernor


def _stat(busy: list[int], idle: list[int]) -> str:
    """A /proc/stat with one line per CPU: user, nice, system, idle, iowait, irq, softirq, steal."""
    lines = [f"cpu  {sum(busy)} 0 0 {sum(idle)} 0 0 0 0"]
    lines += [f"cpu{i} {b} 0 0 {d} 0 0 0 0" for i, (b, d) in enumerate(zip(busy, idle, strict=True))]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(("others_ticks", "expected"), [(0, 4), (100, 3), (130, 3), (160, 2), (400, 1)])
def test_threads_are_the_free_cores(tmp_path, monkeypatch, others_ticks, expected):
    """4 CPUs, two samples 1 s apart; this process used 1 CPU-second, the rest of the busy time is
    other processes': 1.3 busy cores leave 2.7 free (3 threads), 1.6 leave 2.4 (2 threads)."""
    stat = tmp_path / "stat"
    clock = {"wall": 0.0, "own": 0.0}
    monkeypatch.setattr(threads_mod, "_STAT", stat)
    monkeypatch.setattr(threads_mod.os, "sched_getaffinity", lambda _: {0, 1, 2, 3}, raising=False)
    monkeypatch.setattr(threads_mod.os, "sysconf", lambda _: 100)
    monkeypatch.setattr(threads_mod.time, "monotonic", lambda: clock["wall"])
    monkeypatch.setattr(threads_mod.time, "process_time", lambda: clock["own"])
    stat.write_text(_stat([0, 0, 0, 0], [0, 0, 0, 0]))
    governor = ThreadGovernor(max_threads=4)
    assert governor.threads() == 4  # nothing measured yet
    clock.update(wall=1.0, own=1.0)
    stat.write_text(_stat([100 + others_ticks, 0, 0, 0], [0, 100, 100, 100]))  # our 100 ticks plus others'
    assert governor.threads() == expected


def test_no_proc_stat_leaves_the_thread_count_alone(tmp_path, monkeypatch):
    monkeypatch.setattr(threads_mod, "_STAT", tmp_path / "missing")
    governor = ThreadGovernor(max_threads=3, interval=0.0)
    assert governor.threads() == 3


def test_scoring_restores_the_callers_thread_count(tiny_scorer):
    engine = tiny_scorer.engine
    request = ScoreRequest("q", ("Question: pick one\nA. x\nB. y\n", "Answer:"), ("A", "B"))
    before = torch.get_num_threads()
    pinned = LetterEngine(engine.model, engine.tokenizer, EngineConfig(threads=1))
    seen = []
    forward = engine.model.forward
    engine.model.forward = lambda *a, **kw: seen.append(torch.get_num_threads()) or forward(*a, **kw)
    try:
        (item,) = pinned.score([request])
    finally:
        del engine.model.forward
    assert set(seen) == {1}
    assert torch.get_num_threads() == before
    (auto,) = engine.score([request])
    assert torch.get_num_threads() == before
    assert item.logprobs == pytest.approx(auto.logprobs, abs=1e-6)
