"""The runner: caching, resuming, refusing another model's run directory, outputs."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence

import pytest

from ava.contracts.results import SCHEMA_VERSION, ItemScore, PlotSpec
from ava.contracts.scoring import ScoredItem, ScoreRequest
from ava.evals.runner import run_tasks
from ava.evals.task import EvalItem, TaskResult
from ava.runs import BindingMismatch, ChunkPolicy, RunRefused, read_run
from ava.subsets import first_units


class ToyTask:
    """Three yes/no items; metric = mean probability of "A"."""

    name = "toy"
    template_version = None

    def __init__(self, version: str = "1", prompt: str = "Q{}?\n", limit: int | None = None) -> None:
        self.version = version
        self.prompt = prompt
        self.limit = limit

    def items(self) -> Sequence[EvalItem]:
        return first_units([
            EvalItem(f"q{i}", ScoreRequest(f"q{i}", (self.prompt.format(i), "Answer:"), ("A", "B")), {"unit": i // 2})
            for i in range(5)
        ], self.limit)

    reducer = "mean"

    def score(self, items: Sequence[EvalItem], outputs: Mapping[str, ScoredItem]) -> list[ItemScore]:
        return [ItemScore(i.id, str(i.meta["unit"]), {"p_a": outputs[i.id].probs[0]}) for i in items]

    def metrics(self, scores: Sequence[ItemScore]) -> TaskResult:
        p = [s.values["p_a"] for s in scores]
        return TaskResult(
            headline={"p_a": sum(p) / len(p)},
            units=len(scores),
            unit="items",
            tables={"per_item": [{"id": s.id, "p_a": x} for s, x in zip(scores, p, strict=True)]},
            plots=[PlotSpec(name="p_a", title="P(A)", labels=[s.id for s in scores], series={"p": p})],
        )


class CountingScorer:
    """Puts probability 0.6 / 0.2 on A / B (letter mass 0.8), and counts what it scored."""

    backend = "test"

    def __init__(self, identity: str = "counting", mass: float = 0.8, fail_after: int | None = None) -> None:
        self.identity = identity
        self.mass = mass
        self.seen: list[str] = []
        self.fail_after = fail_after

    def score(self, requests: Sequence[ScoreRequest], progress: bool = False) -> list[ScoredItem]:
        out = []
        for r in requests:
            if self.fail_after is not None and len(self.seen) >= self.fail_after:
                raise KeyboardInterrupt
            self.seen.append(r.id)
            out.append(ScoredItem(r.id, (math.log(0.75 * self.mass), math.log(0.25 * self.mass))))
        return out


def test_run_writes_run_directory(tmp_path):
    scorer = CountingScorer()
    res = run_tasks([ToyTask()], scorer, tmp_path, seed=3, config={"model": "m"}, progress=False)
    assert res["tasks"]["toy"]["headline"]["p_a"] == pytest.approx(0.75)
    on_disk = json.loads((tmp_path / "results.json").read_text())
    assert on_disk["schema_version"] == SCHEMA_VERSION
    assert on_disk["run"]["model"] == "m" and on_disk["run"]["seed"] == 3
    info = on_disk["tasks"]["toy"]["task_info"]
    assert info["n_items"] == 5 and info["n_scored"] == 5 and info["n_cached"] == 0
    assert on_disk["tasks"]["toy"]["diagnostics"]["letter_mass_mean"] == pytest.approx(0.8)
    assert (tmp_path / "tables" / "toy__per_item.csv").read_text().splitlines()[0] == "id,p_a"
    assert (tmp_path / "plots" / "toy__p_a.png").read_bytes()[:4] == b"\x89PNG"
    items = [json.loads(line) for line in (tmp_path / "items" / "toy.jsonl").read_text().splitlines()]
    assert [r["id"] for r in items] == ["q0", "q1", "q2", "q3", "q4"]
    record = read_run(tmp_path)
    assert record.kind == "eval" and record.status == "complete" and record.binding.model == "counting"
    assert record.info["tasks"] == ["toy"]


def test_rerun_and_extension_never_rescore(tmp_path):
    scorer = CountingScorer()
    run_tasks([ToyTask(limit=1)], scorer, tmp_path, progress=False)
    assert scorer.seen == ["q0", "q1"]  # a unit is meta["unit"]: two items per unit
    run_tasks([ToyTask(limit=2)], scorer, tmp_path, progress=False)
    run_tasks([ToyTask()], scorer, tmp_path, progress=False)
    assert scorer.seen == ["q0", "q1", "q2", "q3", "q4"]


def test_changed_template_is_rescored(tmp_path):
    scorer = CountingScorer()
    run_tasks([ToyTask()], scorer, tmp_path, progress=False)
    run_tasks([ToyTask(prompt="Question {}?\n")], scorer, tmp_path, progress=False)
    run_tasks([ToyTask(version="2", prompt="Question {}?\n")], scorer, tmp_path, progress=False)
    assert len(scorer.seen) == 15


def test_interrupted_run_resumes_without_loss(tmp_path, monkeypatch):
    monkeypatch.setattr("ava.evals.runner.CHUNKS", ChunkPolicy(2, 2))
    with pytest.raises(KeyboardInterrupt):
        run_tasks([ToyTask()], CountingScorer(fail_after=3), tmp_path, progress=False)
    assert read_run(tmp_path).status == "interrupted" and "rerun the same command" in read_run(tmp_path).reason
    assert not (tmp_path / "results.json").exists()
    resumed = CountingScorer()
    res = run_tasks([ToyTask()], resumed, tmp_path, progress=False)
    # chunks of 2: the first chunk (q0, q1) was saved; the chunk that failed mid-way is redone
    assert resumed.seen == ["q2", "q3", "q4"]
    assert res["tasks"]["toy"]["task_info"]["n_cached"] == 2


def test_torn_cache_line_is_rescored(tmp_path):
    run_tasks([ToyTask()], CountingScorer(), tmp_path, progress=False)
    cache = tmp_path / "cache" / "scores.jsonl"
    lines = cache.read_text().splitlines()
    cache.write_text("\n".join(lines[:-1]) + "\n" + lines[-1][:10])
    again = CountingScorer()
    run_tasks([ToyTask()], again, tmp_path, progress=False)
    assert again.seen == ["q4"]


def test_run_dir_of_another_model_is_refused(tmp_path):
    run_tasks([ToyTask()], CountingScorer("model-a"), tmp_path, progress=False)
    with pytest.raises(BindingMismatch, match="model: model-a -> model-b"):
        run_tasks([ToyTask()], CountingScorer("model-b"), tmp_path, progress=False)
    restarted = CountingScorer("model-b")
    run_tasks([ToyTask()], restarted, tmp_path, progress=False, restart=True)
    assert len(restarted.seen) == 5 and read_run(tmp_path).binding.model == "model-b"
    (tmp_path / "run.json").unlink()
    with pytest.raises(RunRefused, match="no run record"):
        run_tasks([ToyTask()], CountingScorer("model-a"), tmp_path, progress=False)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("x")  # a folder of other things is fine
    run_tasks([ToyTask()], CountingScorer("model-a"), tmp_path / "other", progress=False)


def test_low_letter_mass_warns(tmp_path, capsys):
    res = run_tasks([ToyTask()], CountingScorer(mass=0.02), tmp_path, progress=False)
    err = capsys.readouterr().err
    assert "2.0% of its probability on the option letters" in err
    assert res["tasks"]["toy"]["diagnostics"]["low_letter_mass"] is True


def test_limit_counts_units():
    items = ToyTask().items()
    assert [i.id for i in first_units(items, 2)] == ["q0", "q1", "q2", "q3"]
    with pytest.raises(ValueError, match="at least 1"):
        first_units(items, 0)


def test_a_failing_task_leaves_the_run_failed_with_its_reason(tmp_path):
    class Broken(ToyTask):
        def metrics(self, scores):
            raise ValueError("no pairs to score")

    with pytest.raises(ValueError):
        run_tasks([Broken()], CountingScorer(), tmp_path, progress=False)
    record = read_run(tmp_path)
    assert record.status == "failed" and record.reason == "ValueError: no pairs to score"
    assert not (tmp_path / "results.json").exists()
    res = run_tasks([ToyTask()], CountingScorer(), tmp_path, progress=False)  # resumes: every score cached
    assert res["tasks"]["toy"]["task_info"]["n_cached"] == 5


def test_uniform_scorer_and_identical_outputs(tmp_path):
    from ava.models import load_scorer

    uniform = load_scorer("uniform")
    a = run_tasks([ToyTask()], uniform, tmp_path / "a", progress=False)
    run_tasks([ToyTask()], uniform, tmp_path / "b", progress=False)
    assert a["tasks"]["toy"]["headline"]["p_a"] == pytest.approx(0.5)
    for rel in ("items/toy.jsonl", "tables/toy__per_item.csv", "plots/toy__p_a.png"):
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes(), rel
