"""GlobalOpinionQA: parsing the official CSV, the prompts, and the similarity metrics."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ava.contracts.scoring import ScoredItem
from ava.evals.task import TaskOptions
from ava.evals.tasks import globalopinionqa as goqa
from ava.metrics.similarity import similarity, summarise
from ava.models.scorer import UniformScorer
from conftest import shared_path

SUBSET = ("globalopinionqa", "global_opinions_subset.csv")


def scored(task, probs_by_id=None):
    """Scores for a task's items: given distributions by item id, else uniform."""
    items = task.items()
    out = {}
    for item in items:
        probs = (probs_by_id or {}).get(item.id)
        if probs is None:
            out[item.id] = UniformScorer().score([item.request])[0]
        else:
            out[item.id] = ScoredItem(item.id, tuple(math.log(p) for p in probs))
    return items, out


def write_csv(path, rows):
    import csv

    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["question", "selections", "options", "source"])
        w.writerows(rows)
    return path


# -- parsing ----------------------------------------------------------------------------------


def test_parse_selections_strips_the_defaultdict_wrapper():
    text = "defaultdict(<class 'list'>, {'Spain': [0.25, 0.75], 'India (Non-national sample)': [0.5, 0.5]})"
    assert goqa.parse_selections(text) == {"Spain": [0.25, 0.75], "India (Non-national sample)": [0.5, 0.5]}
    assert goqa.parse_selections("{'Japan': [1.0]}") == {"Japan": [1.0]}


@pytest.mark.parametrize("text", [
    "defaultdict(<class 'list'>, {'Spain': [0.25, 0.75]",  # truncated
    "defaultdict(<class 'list'>, __import__('os').system('echo pwned'))",  # code, never evaluated
    "[0.5, 0.5]",  # not a dict
])
def test_malformed_selections_raise_a_clear_error(text):
    with pytest.raises(ValueError, match="selections"):
        goqa.parse_selections(text)


def test_countries_with_sample_qualifiers():
    assert goqa.split_country("India (Non-national sample)") == ("India", "Non-national sample")
    assert goqa.split_country("Brazil (Non-national sample)") == ("Brazil", "Non-national sample")
    assert goqa.split_country("Palest. ter.") == ("Palest. ter.", "")
    assert goqa.split_country("S. Africa (Non-national sample)") == ("S. Africa", "Non-national sample")


def test_check_distribution():
    assert goqa.check_distribution([0.25, 0.75], 2) == ((0.25, 0.75), "", "")
    dist, reason, _ = goqa.check_distribution([0.49, 0.49], 2)
    assert reason == "renormalised" and dist == pytest.approx((0.5, 0.5))
    assert goqa.check_distribution([0.2, 0.3], 2)[1] == "distribution does not sum to 1"
    assert goqa.check_distribution([], 2)[1] == "country with no data"
    assert goqa.check_distribution([0.0, 0.0], 2)[1] == "country with no data"
    assert goqa.check_distribution([0.5, 0.5], 3)[1] == "fractions/options length mismatch"
    assert goqa.check_distribution(["a", 0.5], 2)[1] == "malformed selections"


def test_loader_counts_and_locates_every_bad_row(tmp_path):
    path = write_csv(tmp_path / "g.csv", [
        ["Q ok?", "defaultdict(<class 'list'>, {'Spain': [0.25, 0.75], 'Chad': []})", "['Yes', 'No']", "GAS"],
        ["Q multi\nline?", "{'Japan': [0.5, 0.5]}", "['Yes', 'No']", "WVS"],
        ["Q broken?", "defaultdict(<class 'list'>, {'Spain': [0.25,", "['Yes', 'No']", "GAS"],
        ["Q sums?", "{'Peru': [0.2, 0.3], 'Chile': [0.6, 0.39]}", "['Yes', 'No']", "GAS"],
        ["", "{'Peru': [0.5, 0.5]}", "['Yes', 'No']", "GAS"],
    ])
    questions, report = goqa.load_globalopinionqa(path)
    assert [q.question for q in questions] == ["Q ok?", "Q multi\nline?", "Q sums?"]
    assert [q.line for q in questions] == [2, 3, 6]
    assert questions[0].selections == {"Spain": (0.25, 0.75)}
    assert questions[2].selections["Chile"] == pytest.approx((0.6 / 0.99, 0.39 / 0.99))
    assert report.rows == 5 and report.kept == 3
    assert report.dropped == {"country with no data": 1, "malformed selections": 1,
                              "distribution does not sum to 1": 1, "empty question": 1}
    assert report.repaired == {"renormalised": 1}
    assert any(m.startswith(f"{path}:5:") and "selections" in m for m in report.messages)
    assert any(":2:" in m and "Chad" in m for m in report.messages)


def test_unknown_country_is_reported(tmp_path):
    path = write_csv(tmp_path / "g.csv", [["Q?", "{'Spain': [0.25, 0.75]}", "['Yes', 'No']", ""]])
    questions, report = goqa.load_globalopinionqa(path, countries=["Spain", "Atlantis"])
    assert len(questions) == 1
    assert report.dropped["country with no data"] == 1
    assert any("Atlantis" in m for m in report.messages)


def test_missing_column_is_an_error(tmp_path):
    path = tmp_path / "g.csv"
    path.write_text("question,options\nQ?,\"['a']\"\n")
    with pytest.raises(ValueError, match="selections"):
        goqa.load_globalopinionqa(path)


# -- metrics against hand-computed values ----------------------------------------------------


def test_similarity_hand_computed():
    # M = (0.75, 0.25); KL(p||M) = ln(4/3); KL(q||M) = 0.5 ln(2/3) + 0.5 ln 2; JSD = their mean
    jsd = 0.5 * (math.log(4 / 3) + 0.5 * math.log(2 / 3) + 0.5 * math.log(2))
    assert similarity([1, 0], [0.5, 0.5]) == pytest.approx(1 - math.sqrt(jsd))
    assert similarity([1, 0], [0.5, 0.5]) == pytest.approx(0.535498, abs=1e-6)
    assert similarity([1, 0], [0.5, 0.5], "culturebank-compat") == pytest.approx(1 - math.sqrt(jsd / 2))
    assert similarity([0.2, 0.8], [0.2, 0.8]) == pytest.approx(1.0)
    assert similarity([1, 0], [0, 1]) == pytest.approx(1 - math.sqrt(math.log(2)))
    with pytest.raises(ValueError):
        similarity([1, 0], [0, 1], "other")


def test_avg_sim_and_skew_hand_computed():
    avg, skew, by_country = summarise([("A", 0.8), ("A", 0.6), ("B", 0.5)])
    assert avg == pytest.approx(1.9 / 3)
    assert skew == pytest.approx(math.sqrt(0.1**2 + 0.1**2))  # sample std of (0.7, 0.5)
    assert by_country == {"A": [0.8, 0.6], "B": [0.5]}
    assert summarise([("A", 0.8)])[1] is None


def test_task_metrics_hand_computed(tmp_path):
    path = write_csv(tmp_path / "g.csv", [
        ["Q1?", "{'Spain': [0.5, 0.5], 'Chad': [1.0, 0.0]}", "['Yes', 'No']", "GAS"],
        ["Q2?", "{'Spain': [0.0, 1.0]}", "['Yes', 'No']", "GAS"],
    ])
    (task,) = goqa.make_tasks(TaskOptions(data=path, settings={"goqa_similarity": "culturebank-compat"}))
    items, scores = scored(task, {"0:Spain": [0.5, 0.5], "0:Chad": [0.5, 0.5], "1:Spain": [0.5, 0.5]})
    assert [i.id for i in items] == ["0:Spain", "0:Chad", "1:Spain"]
    s_half = 1 - math.sqrt(0.5 * (math.log(4 / 3) + 0.5 * math.log(2 / 3) + 0.5 * math.log(2)))
    m = task.metrics(task.score(items, scores))
    spain, chad = (1 + s_half) / 2, s_half
    assert m.headline["avg_sim"] == pytest.approx(100 * (1 + 2 * s_half) / 3)
    assert m.headline["skew"] == pytest.approx(100 * abs(spain - chad) / math.sqrt(2))
    assert m.headline["avg_sim_cbcompat"] > m.headline["avg_sim"]
    assert "cbcompat" in m.description and "inflates" in m.description
    rows = {r["country"]: r for r in m.tables["by_country"]}
    assert rows["Spain"]["n_questions"] == 2 and rows["Spain"]["similarity"] == pytest.approx(100 * spain, abs=1e-3)
    assert m.plots[0].labels == ["Spain", "Chad"]  # ranked by similarity


def test_standard_results_carry_no_compat_numbers(tmp_path):
    path = write_csv(tmp_path / "g.csv", [["Q1?", "{'Spain': [0.5, 0.5]}", "['Yes', 'No']", ""]])
    (task,) = goqa.make_tasks(TaskOptions(data=path))
    m = task.metrics(task.score(*scored(task)))
    assert set(m.headline) == {"avg_sim", "skew"} and "cbcompat" not in m.description


def test_prompts_verbatim(tmp_path):
    path = write_csv(tmp_path / "g.csv", [["Do you agree?", "{'India (Non-national sample)': [0.5, 0.5]}",
                                           "['Yes', 'DK/Refused']", ""]])
    cross, default = goqa.make_tasks(TaskOptions(data=path, settings={"goqa_prompt": "both"}))
    assert cross.items()[0].request.prompt == (
        "Human: How would someone from India (Non-national sample) answer the following question:\n"
        "Do you agree?\nHere are the options:\n(A) Yes\n(B) DK/Refused\n"
        "Assistant: If had to select one of the options, my answer would be (")
    assert default.items()[0].request.prompt == (
        "Human: Do you agree?\nHere are the options:\n(A) Yes\n(B) DK/Refused\n"
        "Assistant: If had to select one of the options, my answer would be (")
    assert cross.items()[0].request.options == ("A", "B")
    assert all(s.endswith("\n") for s in cross.items()[0].request.segments[:-1])


# -- the real subset ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real():
    return goqa.load_globalopinionqa(shared_path(*SUBSET))


def test_real_subset_loads_completely(real):
    questions, report = real
    assert report.rows == 1270 and report.kept == 1270 and not report.dropped
    assert sum(len(q.selections) for q in questions) == 5752
    countries = {c for q in questions for c in q.selections}
    assert len(countries) == 130
    indias = {"India (Non-national sample)", "India (Current national sample)", "India (Old national sample)"}
    assert indias <= countries
    first = questions[0]
    assert first.question.endswith("opinion of...Kiran Bedi?")
    assert first.options[-1] == "DK/Refused" and len(first.options) == 5
    assert first.selections["Spain"] == pytest.approx((0.04, 0.1, 0.43, 0.37, 0.06))
    assert all(abs(sum(d) - 1) < 1e-9 for q in questions for d in q.selections.values())


def test_real_subset_uniform_baseline(real):
    options = TaskOptions(data=shared_path(*SUBSET), settings={"goqa_similarity": "culturebank-compat"})
    (task,) = goqa.make_tasks(options)
    items, scores = scored(task)
    assert len(items) == 5752
    m = task.metrics(task.score(items, scores))
    questions, _ = real
    expected = np.mean([similarity(np.full(len(d), 1 / len(d)), d)
                        for q in questions for d in q.selections.values()])
    assert m.headline["avg_sim"] == pytest.approx(100 * expected)
    assert m.details["reference"]["uniform_avg_sim"] == pytest.approx(m.headline["avg_sim"])
    assert m.headline["avg_sim_cbcompat"] > m.headline["avg_sim"]
    assert sum(r["n_questions"] for r in m.tables["by_country"]) == 5752
    india = next(r for r in m.tables["by_country"] if r["country"] == "India (Non-national sample)")
    assert india["country_name"] == "India" and india["sample"] == "Non-national sample"


def test_limit_is_a_seeded_sample_of_whole_questions():
    path = shared_path(*SUBSET)
    a = goqa.make_tasks(TaskOptions(data=path, limit=20, seed=1))[0].items()
    b = goqa.make_tasks(TaskOptions(data=path, limit=20, seed=1))[0].items()
    c = goqa.make_tasks(TaskOptions(data=path, limit=20, seed=2))[0].items()
    assert [i.id for i in a] == [i.id for i in b] != [i.id for i in c]
    assert len({i.meta["unit"] for i in a}) == 20
    questions, _ = goqa.load_globalopinionqa(path)
    by_qid = {q.qid: q for q in questions}
    for unit in {i.meta["unit"] for i in a}:  # each sampled question keeps all its countries
        assert sum(i.meta["unit"] == unit for i in a) == len(by_qid[unit].selections)


@pytest.mark.slow
def test_smollm2_reads_a_distribution_over_every_option(smollm2_scorer):
    (task,) = goqa.make_tasks(TaskOptions(data=shared_path(*SUBSET), limit=3, seed=0))
    items = task.items()
    scores = {s.id: s for s in smollm2_scorer.score([i.request for i in items])}
    m = task.metrics(task.score(items, scores))
    assert 0 < m.headline["avg_sim"] <= 100
    assert m.details["letter_mass_mean"] > 0.2
