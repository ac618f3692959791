"""ava-tasks: batched generation, label scoring, outputs, resume."""

from __future__ import annotations

import json

import pytest

from ava.evals.tasks import ava_tasks
from test_training import write_instruction_fixture


def _rec(i: int, task: str, label: str | None, prediction: str, split: str = "test_advertiser") -> dict:
    return {"id": f"{task}{i}", "split": split, "task": task, "family": task.split("-")[0], "label": label,
            "prediction": prediction, "reference": "", "ppl_source": None, "ppl_target": None}


def test_predictive_scoring_hand_computed():
    records = [
        _rec(0, "TAP-G", "female", "Best target audience for this ad is Female."),
        _rec(1, "TAP-G", "female", "Best target audience for this ad is Male."),
        _rec(2, "TAP-G", "male", "Best target audience for this ad is Male."),
        _rec(3, "TAP-G", "male", "I cannot tell."),
        _rec(4, "TAP-G", "male", "male"),
        _rec(5, "TAP-G", "unknown", "male"),  # unreadable gold: counted, not scored
    ]
    got = ava_tasks.score_predictive("TAP-G", records)
    # female 1/2, male 2/3 -> balanced (50 + 66.67) / 2; plain 3/5.
    assert got["accuracy_balanced"] == pytest.approx((50 + 200 / 3) / 2)
    assert got["accuracy"] == pytest.approx(60.0)
    assert (got["n"], got["n_unparsed"], got["n_bad_gold"], got["baseline"]) == (5, 1, 1, 50.0)
    assert ava_tasks.score_predictive("TAP-A", [_rec(0, "TAP-A", "55-64", "aged 55-64")])["baseline"] == (
        pytest.approx(100 / 7)
    )
    # Bucket tasks: the label set comes from the whole dataset, not from the few items scored.
    spend = [_rec(0, "TAP-B", "100-199", "The ad spent between 100 to 199 USD.")]
    got = ava_tasks.score_predictive("TAP-B", spend, {"TAP-B": ["0-99", "100-199", "200-299", "300-399"]})
    assert (got["accuracy"], got["baseline"], got["n_classes"]) == (100.0, 25.0, 4)


def test_state_scoring_top1_top3():
    records = [
        _rec(0, "TAP-R", "Ohio|Iowa|Maine", "Top 3 states where the ad will perform best are Ohio, Texas, Utah."),
        _rec(1, "TAP-R", "Ohio|Iowa|Maine", "Top 3 states where the ad will perform best are Iowa, Ohio, Utah."),
        _rec(2, "TAP-R", "Texas|Utah|Nevada", "Nevada, Utah, Iowa"),
        _rec(3, "TAP-R", "Washington, District of Columbia|Utah|Iowa", "District of Columbia first"),
    ]
    got = ava_tasks.score_predictive("TAP-R", records)
    assert got["top1"] == pytest.approx(50.0) and got["top3"] == pytest.approx(75.0)
    # classes Ohio 1/2, Texas 0/1, DC 1/1 -> (50 + 0 + 100) / 3
    assert got["top1_balanced"] == pytest.approx(50.0)
    assert got["baseline_top1"] == pytest.approx(2.0) and got["baseline_top3"] == pytest.approx(6.0)


def test_batched_generation_equals_one_by_one():
    from ava.models import load_model

    model, tok = load_model("tiny")
    tok.pad_token = tok.eos_token
    prompts = ["Short prompt. Answer:", "A much longer prompt about an advertisement for boots in Ohio. Answer:",
               "Mid-length prompt for tractors. Answer:"]
    batched = ava_tasks.generate(model, tok, prompts, max_new_tokens=8, batch_size=3)
    single = [ava_tasks.generate(model, tok, [p], max_new_tokens=8, batch_size=1)[0] for p in prompts]
    assert batched == single and all(batched)


def test_eval_writes_a_run_directory_and_resumes_without_the_model(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from ava.cli import app
    from ava.runs import read_run

    data = write_instruction_fixture(tmp_path / "data", n_train=2, n_test=3)
    out = tmp_path / "eval"
    args = ["eval", "--model", "tiny", "--benchmark", "ava-tasks", "--data", str(data), "--limit", "2",
            "--out", str(out), "--no-progress"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "ava-tasks (all, 16 items)" in result.output
    doc = json.loads((out / "results.json").read_text())
    task = doc["tasks"]["ava-tasks"]
    assert doc["schema_version"].startswith("2.") and read_run(out).complete
    assert task["units"] == 16 and task["unit"] == "items"  # 4 tasks x 2 items x 2 splits
    res = task["details"]["by_split"]
    assert set(res) == {"all", "test_advertiser", "test_temporal"}
    assert res["all"]["TAP-G"]["n"] == 4 and res["all"]["TAP-G"]["baseline"] == 50.0
    assert 0.0 <= task["headline"]["TAP-G/accuracy_balanced"] <= 100.0
    ts = res["all"]["TS-E"]
    assert {"bleu1", "bleu4", "rouge_lsum", "bertscore_f1", "delta_ppl"} <= set(ts)
    assert ts["delta_ppl"] == pytest.approx(ts["ppl_source"] - ts["ppl_target"])
    assert task["headline"]["TS-E/delta_ppl"] == ts["delta_ppl"]
    items = [json.loads(line) for line in (out / "items" / "ava-tasks.jsonl").read_text().splitlines()]
    assert len(items) == 16 and all(i["ppl_source"] > 1 for i in items if i["task"] == "TS-E")
    assert (out / "tables" / "ava-tasks__results.csv").read_text().startswith("split,task,metric,value\n")
    assert task["diagnostics"] is None and task["task_info"]["n_scored"] == 16

    # Resume: nothing left to generate, so the model must not even be loaded; same numbers out.
    def no_model(*args, **kwargs):
        raise AssertionError("model loaded although every item was done")

    monkeypatch.setattr("ava.models.options.load_model", no_model)
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0, again.output
    redone = json.loads((out / "results.json").read_text())["tasks"]["ava-tasks"]
    assert redone["headline"] == task["headline"] and redone["task_info"]["n_cached"] == 16
    # A larger sample reuses a cached answer only inside a chunk whose every item is cached (a chunk is
    # generated whole, so each answer keeps the batch company an uninterrupted run gives it: issue 26);
    # the sample of 3 regroups the items, so most chunks are generated again, none lost or doubled.
    monkeypatch.undo()
    more = CliRunner().invoke(app, [a if a != "2" else "3" for a in args])
    assert more.exit_code == 0, more.output
    info = json.loads((out / "results.json").read_text())["tasks"]["ava-tasks"]["task_info"]
    assert info["n_items"] == 24 and info["n_cached"] < 16 and info["n_cached"] + info["n_scored"] == 24
    items = [json.loads(line) for line in (out / "items" / "ava-tasks.jsonl").read_text().splitlines()]
    assert len(items) == 24 and len({(i["task"], i["id"]) for i in items}) == 24
    # ava report renders it like any other evaluation run.
    report = CliRunner().invoke(app, ["report", str(out), "--out", str(tmp_path / "r.html")])
    assert report.exit_code == 0, report.output
    assert "TAP-G/accuracy_balanced" in (tmp_path / "r.html").read_text()


def test_flags_ava_tasks_cannot_honour_are_refused(tmp_path):
    from typer.testing import CliRunner

    from ava.cli import app

    base = ["eval", "--benchmark", "ava-tasks", "--data", str(tmp_path), "--out", str(tmp_path / "o")]
    for extra, message in ((["--model", "tiny", "--steer"], "has no steering task"),
                           (["--model", "tiny", "--chat"], "drop --framing (or --chat)"),
                           (["--model", "uniform"], "give a language model"),
                           (["--model", "tiny", "--set", "formats=qa"], "unknown setting 'formats'")):
        result = CliRunner().invoke(app, [*base, *extra])
        assert result.exit_code == 2 and message in result.output, (extra, result.output)
    missing = CliRunner().invoke(app, ["eval", "--benchmark", "ava-tasks", "--model", "tiny", "--out",
                                       str(tmp_path / "o")])
    assert missing.exit_code == 2 and "needs --data DIR" in missing.output


def test_bertscore_settings_reach_the_metrics(tmp_path):
    """``--set bertscore_model=... bertscore_layer=...`` are the ava-tasks settings BERTScore is computed with."""
    from ava.evals import model_metrics as tm
    from ava.evals.task import TaskOptions
    from ava.models.encoders import minilm_path

    data = write_instruction_fixture(tmp_path / "data", n_train=2, n_test=2)
    settings = {"bertscore_model": minilm_path(), "bertscore_layer": "3"}
    (task,) = ava_tasks.make_tasks(TaskOptions(limit=1, data=data, settings=settings))
    assert task.bertscore == tm.BertScoreConfig(minilm_path(), 3)
    items = task.items()
    records = {i.id: {"id": i.id, "split": i.meta["split"], "task": i.meta["task"], "family": i.meta["family"],
                      "prediction": "Vote early this year.", "reference": i.meta["reference"], "label": i.meta["label"],
                      "ppl_source": None, "ppl_target": None} for i in items}
    result = task.metrics(task.score(items, records))
    bert = result.details["bertscore"]
    assert (bert["layer"], bert["comparable_to_published"]) == (3, False) and "not comparable" in bert["note"]
    generative = [r for r in records.values() if r["family"] != "TAP"]
    expected = tm.bertscore_f1([r["prediction"] for r in generative], [r["reference"] for r in generative],
                               tm.BertScoreConfig(minilm_path(), 3))
    got = {row["id"]: row["bertscore_f1"] for row in result.tables["bertscore"]}
    assert [got[r["id"]] for r in generative] == pytest.approx(expected, abs=1e-6)
    with pytest.raises(ValueError, match="the bundled MiniLM has 6 layers"):
        ava_tasks.make_tasks(TaskOptions(limit=1, data=data, settings={"bertscore_layer": "17"}))
    with pytest.raises(ValueError, match="pass --set bertscore_layer=N"):
        ava_tasks.make_tasks(TaskOptions(limit=1, data=data, settings={"bertscore_model": str(tmp_path)}))
