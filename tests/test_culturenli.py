"""CultureNLI: the loader on the real data.tsv, majority labels, the prompt, F1 sweep and AUROC."""

from __future__ import annotations

import math

import pytest

from ava.contracts.scoring import ScoredItem
from ava.evals.task import TaskOptions
from ava.evals.tasks import culturenli as cnli
from ava.metrics.classification import auroc, macro_f1_sweep
from ava.models.scorer import UniformScorer
from conftest import shared_path

HEADER = "premise\thypothesis\tus_ratings\tin_ratings\n"


def test_majority_label_follows_the_published_tie_rule():
    assert cnli.majority_label(["N", "E", "E"]) == ("E", False)
    assert cnli.majority_label(["C", "E", "E", "C"]) == ("C", True)  # tie: first listed wins
    assert cnli.majority_label(["E"]) == ("E", False)


def test_parse_ratings():
    assert cnli.parse_ratings("['E', 'N', 'C']") == ("E", "N", "C")
    for bad in ("['E', 'X']", "[]", "E, N", "__import__('os')"):
        with pytest.raises(ValueError):
            cnli.parse_ratings(bad)


def test_threshold_sweep_hand_computed():
    gold, p = [1, 0, 1, 0], [0.95, 0.65, 0.75, 0.1]
    sweep = dict(macro_f1_sweep(gold, p, [0.6, 0.7, 0.8, 0.9, 1.0]))
    # t=0.6 predicts 1,1,1,0: F1(entail)=0.8, F1(not)=2/3
    assert sweep[0.6] == pytest.approx((0.8 + 2 / 3) / 2)
    assert sweep[0.7] == pytest.approx(1.0)
    assert sweep[0.8] == pytest.approx((2 / 3 + 0.8) / 2) == sweep[0.9]
    assert sweep[1.0] == pytest.approx((0 + 2 / 3) / 2)  # nothing predicted entail
    assert auroc(gold, p) == pytest.approx(1.0)
    assert auroc([1, 0, 0], [0.2, 0.5, 0.1]) == pytest.approx(0.5)
    assert auroc([0, 0], [0.2, 0.5]) is None


def test_bad_rows_are_counted_with_their_lines(tmp_path):
    path = tmp_path / "data.tsv"
    path.write_text(HEADER
                    + 'He said "stop".\tHe spoke.\t[\'E\', \'E\', \'N\']\t[\'N\', \'N\', \'E\']\n'
                    + "P2\t\t['E']\t['E']\n"
                    + "P3\tH3\t['E', 'X']\t['E']\n"
                    + "P4\tH4\t['E']\n", encoding="utf-8")
    pairs, report = cnli.load_culturenli(path)
    assert len(pairs) == 1 and pairs[0].premise == 'He said "stop".'  # no quote processing
    assert pairs[0].gold == {"US": "E", "IN": "N"}
    assert report.rows == 4 and report.kept == 1
    assert report.dropped == {"empty hypothesis": 1, "malformed ratings": 1, "wrong number of fields": 1}
    assert [m.split(": ")[0] for m in report.messages] == [f"{path}:3", f"{path}:4", f"{path}:5"]


def test_wrong_header_is_an_error(tmp_path):
    path = tmp_path / "data.tsv"
    path.write_text("a\tb\n1\t2\n")
    with pytest.raises(ValueError, match="header"):
        cnli.load_culturenli(path)


def test_metrics_hand_computed(tmp_path):
    path = tmp_path / "data.tsv"
    rows = [("E", "N"), ("N", "E"), ("E", "E"), ("C", "C")]
    path.write_text(HEADER + "".join(f"P{i}\tH{i}\t['{us}']\t['{ind}']\n" for i, (us, ind) in enumerate(rows)))
    (task,) = cnli.make_tasks(TaskOptions(data=path))
    items = task.items()
    assert [i.id for i in items] == ["0:US", "0:IN", "1:US", "1:IN", "2:US", "2:IN", "3:US", "3:IN"]
    p_entail = [0.95, 0.65, 0.75, 0.1]  # the same P(entail) per pair for both cultures
    scores = {}
    for item in items:
        p = p_entail[item.meta["unit"]]
        scores[item.id] = ScoredItem(item.id, (math.log(p), math.log((1 - p) / 2), math.log((1 - p) / 2)))
    m = task.metrics(task.score(items, scores))
    # US gold (E, N, E, C) -> 1,0,1,0: best threshold 0.7 is perfect
    assert m.headline["US"] == pytest.approx(100.0) and m.headline["US_auroc"] == pytest.approx(100.0)
    # IN gold (N, E, E, C) -> 0,1,1,0: t=0.6 predicts 1,1,1,0 (F1 0.8 / 2/3); t>=0.7 predicts 1,0,1,0 (0.5/0.5)
    assert m.headline["IN"] == pytest.approx(100 * (0.8 + 2 / 3) / 2)
    # positives (0.65, 0.75) each beat one of the negatives (0.95, 0.1): 2 of 4 pairs ordered
    assert m.headline["IN_auroc"] == pytest.approx(100 * 2 / 4)
    summary = {r["culture"]: r for r in m.details["summary"]}
    assert summary["US"]["threshold"] == 0.7 and summary["IN"]["threshold"] == 0.6
    assert len(m.tables["thresholds"]) == 10


def test_prompt_verbatim(tmp_path):
    path = tmp_path / "data.tsv"
    path.write_text(HEADER + "A man sleeps.\tA man rests.\t['E']\t['E']\n")
    us, india = cnli.make_tasks(TaskOptions(data=path))[0].items()
    assert us.request.prompt == (
        "Premise: A man sleeps.\nHypothesis: A man rests.\n\nLet’s think as someone who lives in the United States. "
        "What do you think is the relationship between the premise and the hypothesis?\n(E) Entail \n(N) Neutral\n"
        "(C) Contradict\n\nYour Answer (E/N/C): (")
    assert "lives in India." in india.request.prompt
    assert us.request.options == ("E", "N", "C")
    assert us.request.segments[0] == india.request.segments[0] == "Premise: A man sleeps.\n"  # shared, cached


# -- the real data ----------------------------------------------------------------------------------


def test_real_file_loads():
    path = shared_path("culturenli", "data.tsv")
    pairs, report = cnli.load_culturenli(path)
    assert report.rows == 2228 and report.kept == 2227
    assert report.dropped == {"empty hypothesis": 1}
    assert report.messages[0] == f"{path}:584: empty hypothesis; pair dropped"
    first = pairs[0]
    assert first.ratings["US"] == ("C", "C", "C", "C", "N") and first.gold == {"US": "C", "IN": "C"}
    assert any('"' in p.premise or '"' in p.hypothesis for p in pairs)  # quotes kept verbatim
    assert max(len(p.ratings["US"]) for p in pairs) == 93
    assert sum(p.tied["US"] for p in pairs) > 0


def test_real_uniform_baseline_equals_the_all_negative_f1():
    (task,) = cnli.make_tasks(TaskOptions(data=shared_path("culturenli", "data.tsv")))
    items = task.items()
    assert len(items) == 2 * 2227
    scores = {s.id: s for s in UniformScorer().score([i.request for i in items])}
    m = task.metrics(task.score(items, scores))
    for code in ("US", "IN"):
        mine = [i for i in items if i.meta["culture"] == code]
        share_neg = sum(1 - i.meta["entail"] for i in mine) / len(mine)
        f1_neg = 2 * share_neg / (1 + share_neg)  # precision = share, recall = 1
        assert m.headline[code] == pytest.approx(100 * f1_neg / 2)
        assert m.headline[f"{code}_auroc"] == pytest.approx(50.0)


@pytest.mark.slow
def test_smollm2_scores_culturenli(smollm2_scorer):
    (task,) = cnli.make_tasks(TaskOptions(data=shared_path("culturenli", "data.tsv"), limit=4, seed=0))
    items = task.items()
    scores = {s.id: s for s in smollm2_scorer.score([i.request for i in items])}
    m = task.metrics(task.score(items, scores))
    assert set(m.headline) == {"US", "IN", "US_auroc", "IN_auroc"}
    assert all(0 <= r["mean_p_entail"] <= 1 and r["letter_mass_mean"] > 0.1 for r in m.details["summary"])
