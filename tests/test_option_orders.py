"""Option-order controls: orders, mapping back, the letter prior, PriDe; hand-computed values."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import pytest

from ava.contracts.scoring import ScoredItem, ScoreRequest
from ava.contracts.surveys import SurveyQuestion
from ava.evals import rundir
from ava.evals.runner import run_tasks
from ava.evals.task import TaskOptions
from ava.evals.tasks.opinion_task import OpinionTask
from ava.evals.tasks.option_orders import OrderSpec, order_spec
from ava.metrics import letter_bias as lb
from test_opinionqa import fixtures, gd

NEG = -1e4  # log of "no mass"


class PositionScorer:
    """A fake model whose distribution over the letters is ``content(option shown) x bias(position)``,
    normalised; ``content=None``: every option alike (a pure letter preference). The refusal letter
    (shown last) gets ``refusal`` of the mass."""

    identity = "position-fake"
    backend = "test"

    def __init__(self, questions: Sequence[SurveyQuestion], bias: Sequence[float], *, content: bool = False,
                 refusal: float = 0.1) -> None:
        self.by_key = {q.key: q for q in questions}
        self.bias, self.content, self.refusal = np.asarray(bias, dtype=float), content, refusal

    def score(self, requests: Sequence[ScoreRequest], progress: bool = False) -> list[ScoredItem]:
        out = []
        for r in requests:
            q = self.by_key[r.id.split("#")[0]]
            shown = [line.split(". ", 1)[1] for line in r.prompt.splitlines()[1:-1]][:len(q.options)]
            c = np.array([q.overall.distribution[q.options.index(s)] for s in shown]) if self.content else 1.0
            p = c * self.bias[:len(q.options)]
            p = (1 - self.refusal) * p / p.sum()
            out.append(ScoredItem(r.id, tuple(math.log(x) if x > 0 else NEG for x in [*p, self.refusal])))
        return out


def run(tmp_path, questions, scorer, **settings):
    (task,) = OpinionTask_from(questions, settings)
    return task, run_tasks([task], scorer, tmp_path, progress=False)["tasks"]["opinionqa"]


def OpinionTask_from(questions, settings, seed=0):  # noqa: N802 (reads as the constructor it wraps)
    from ava.evals.tasks.opinionqa import make_tasks

    return make_tasks(TaskOptions(seed=seed, settings={k: str(v) for k, v in settings.items()}), questions=questions)


# -- orders ---------------------------------------------------------------------------------
def test_cyclic_orders_and_reversal_of_a_scale():
    assert lb.cyclic_orders(3, ordinal=False) == [(0, 1, 2), (1, 2, 0), (2, 0, 1)]
    assert lb.cyclic_orders(3, ordinal=True) == [(0, 1, 2), (2, 1, 0), (1, 2, 0), (0, 2, 1), (2, 0, 1), (1, 0, 2)]
    assert lb.cyclic_orders(2, ordinal=True) == [(0, 1), (1, 0)]  # the reversal is the one shift
    assert lb.is_ordinal_scale([1, 2, 3]) and lb.is_ordinal_scale([3, 2, 1]) and not lb.is_ordinal_scale([1, 2, 1.5])


def test_permutations_are_seeded_distinct_and_start_with_the_survey_order():
    a = lb.permutation_orders(4, 5, "0:Q")
    assert a == lb.permutation_orders(4, 5, "0:Q") and a[0] == (0, 1, 2, 3) and len(set(a)) == 5
    assert a != lb.permutation_orders(4, 5, "1:Q")
    assert len(lb.permutation_orders(3, 99, 0)) == 6  # clipped to 3!
    big = lb.permutation_orders(10, 4, 0)
    assert len(set(big)) == 4 and all(sorted(p) == list(range(10)) for p in big)


def test_map_back_puts_each_position_on_its_option():
    assert list(lb.map_back([0.7, 0.2, 0.1], (2, 0, 1))) == [0.2, 0.1, 0.7]


def test_a_model_that_always_answers_a_is_uniform_over_all_cyclic_orders(tmp_path):
    qs = fixtures()  # SAFE (a scale: 6 orders), WORLD ([1, 2, 1.5]: 3 orders, clipped)
    task, m = run(tmp_path, qs, PositionScorer(qs, [1.0, 0.0, 0.0]), orders=6)
    assert [i.id for i in task.items()][:7] == [*(f"SAFE_W26#o{k}" for k in range(6)), "WORLD_W27#o0"]
    assert len(task.items()) == 9 and {i.meta["unit"] for i in task.items()} == {"SAFE_W26", "WORLD_W27"}
    assert m["headline"]["entropy_model"] == pytest.approx(1.0)  # (1/3, 1/3, 1/3) on both questions
    assert m["headline"]["representativeness"] == pytest.approx(m["headline"]["uniform_representativeness"])
    assert m["details"]["orders"]["clipped_questions"] == 1
    assert m["details"]["orders"]["orders_per_question"] == {"3": 1, "6": 1}
    # yet its letter prior is all on A: the position bias is TV((1, 0, 0), uniform) = 2/3
    assert m["details"]["letter_prior"]["by_options"]["3"]["prior"] == [1.0, 0.0, 0.0]
    assert m["details"]["letter_prior"]["position_bias"] == pytest.approx(2 / 3, abs=1e-6)
    assert m["units"] == 2


def test_the_survey_order_alone_keeps_the_a_answer(tmp_path):
    qs = fixtures()
    _, m = run(tmp_path, qs, PositionScorer(qs, [1.0, 0.0, 0.0]))
    assert m["headline"]["entropy_model"] == pytest.approx(0.0, abs=1e-9)


# -- the letter prior ----------------------------------------------------------------------
def test_letter_prior_of_a_uniform_and_of_an_a_biased_scorer(tmp_path):
    from ava.models import load_scorer

    qs = fixtures()
    _, m = run(tmp_path / "u", qs, load_scorer("uniform"), orders=3)
    prior = m["details"]["letter_prior"]
    assert prior["by_options"]["3"]["prior"] == pytest.approx([1 / 3] * 3) and prior["position_bias"] == 0
    assert prior["by_options"]["3"]["n_prompts"] == 6
    _, m = run(tmp_path / "a", qs, PositionScorer(qs, [0.5, 0.25, 0.25], content=False))
    prior = m["details"]["letter_prior"]
    # (0.5, 0.25, 0.25): TV from uniform = (1/6 + 1/12 + 1/12) / 2 = 1/6; A holds 1.5x its uniform share
    assert prior["by_options"]["3"]["prior"] == pytest.approx([0.5, 0.25, 0.25])
    assert prior["position_bias"] == pytest.approx(1 / 6, abs=1e-6)
    table = (tmp_path / "a" / m["tables"]["letter_prior"]).read_text().splitlines()
    assert table[0] == "n_options,n_questions,n_prompts,position_bias,first_letter_vs_uniform,A,B,C"
    assert table[1] == "3,2,2,0.166667,1.5,0.5,0.25,0.25"


# -- PriDe ---------------------------------------------------------------------------------
def many_questions(n: int = 10) -> list[SurveyQuestion]:
    """``n`` copies of the fixtures' scale question, each with its own Overall distribution."""
    q1 = fixtures()[0]
    rng = np.random.default_rng(7)
    out = []
    for i in range(n):
        d = rng.dirichlet([2, 2, 2])
        groups = (gd("Overall", "Overall", list(d), 0.1), *q1.groups[1:])
        out.append(replace(q1, key=f"Q{i}_W26", groups=groups))
    return out


def test_pride_removes_a_pure_letter_bias_exactly(tmp_path):
    qs = many_questions(10)
    bias = [0.6, 0.3, 0.1]
    task, m = run(tmp_path, qs, PositionScorer(qs, bias, content=True), debias="pride", seed=0)
    pride = m["details"]["pride"]
    assert pride["estimation_questions"] == 3 and m["units"] == 7 and m["counts"]["pride_estimation"] == 3
    assert pride["prior"]["3"] == pytest.approx(bias, abs=1e-6)
    est = [i for i in task.items() if i.meta.get("role") == "pride-estimation"]
    assert len(est) == 9 and {i.meta["order"][0] for i in est} == {0, 1, 2}  # all cyclic orders of 3
    # every scored question's debiased distribution is its content, the Overall distribution itself
    assert m["headline"]["representativeness_tv"] == pytest.approx(1.0, abs=1e-9)
    undebiased = run(tmp_path / "raw", qs, PositionScorer(qs, bias, content=True))[1]
    assert undebiased["headline"]["representativeness_tv"] < 0.95


def test_pride_set_is_seeded_and_recorded(tmp_path):
    qs = many_questions(10)
    (a,) = OpinionTask_from(qs, {"debias": "pride"}, seed=0)
    (b,) = OpinionTask_from(qs, {"debias": "pride"}, seed=1)
    assert len(a.plan.estimation) == 3 and a.plan.estimation != b.plan.estimation
    assert a.version != b.version and a.version.endswith("+orders1-cyclic-pride-seed0")


def test_pride_leaves_out_an_option_count_too_rare_to_estimate(tmp_path):
    qs = [*many_questions(6), fixtures()[1]]  # one 3-option non-scale question joins the 3-option scales
    two = replace(fixtures()[0], key="TWO_W26", options=("Yes", "No"), ordinals=(1, 2),
                  groups=(gd("Overall", "Overall", [0.3, 0.7]), gd("SEX", "Male", [0.5, 0.5])))
    (task,) = OpinionTask_from([*qs, two], {"debias": "pride"})
    assert task.plan.too_few == {2: 1} and "TWO_W26" not in {i.meta["unit"] for i in task.items()}


# -- the published protocol is untouched ---------------------------------------------------
def test_one_order_is_the_published_protocol_byte_for_byte():
    """Pinned from the code before option orders existed (commit 1b9a8c0): version, dataset hash
    (ids, prompts, meta) and cache keys of the fixtures' items."""
    (task,) = OpinionTask_from(fixtures(), {})
    items = task.items()
    assert task.version == "1+opinion-v1" and [i.id for i in items] == ["SAFE_W26", "WORLD_W27"]
    assert rundir.dataset_hash(items) == "ce6cd0155aaa9498"
    assert [rundir.cache_key("m", task.name, task.version, i) for i in items] == [
        "7ec8cf5b5f6b2ab344a13d5c", "14102e5290ddf09af5cf20bd"]
    (perm,) = OpinionTask_from(fixtures(), {"order_kind": "permutations"})
    assert rundir.dataset_hash(perm.items()) == "ce6cd0155aaa9498" and perm.version == task.version


def test_one_order_on_real_opinionqa_is_the_published_protocol(shared_data):
    from ava.evals.tasks.opinionqa import make_tasks

    (task,) = make_tasks(TaskOptions())
    items = task.items()
    # pinned from commit 1b9a8c0 (before option orders): 1,494 questions, ids, prompts and meta
    assert (task.version, len(items), rundir.dataset_hash(items)) == ("1+opinion-v1", 1494, "8fdd94989b4d9878")


def test_other_orders_never_share_a_cache_key():
    (one,) = OpinionTask_from(fixtures(), {})
    (two,) = OpinionTask_from(fixtures(), {"orders": 2})
    assert two.version == "1+opinion-v1+orders2-cyclic"
    first = two.items()[0]
    assert first.id == "SAFE_W26#o0" and first.request.prompt == one.items()[0].request.prompt
    assert rundir.cache_key("m", two.name, two.version, first) != rundir.cache_key("m", one.name, one.version,
                                                                                   one.items()[0])
    assert two.items()[1].request.prompt.splitlines()[1:5] == ["A. Not safe", "B. Somewhat safe", "C. Very safe",
                                                               "D. Refused"]


def test_limit_counts_questions_not_orders():
    (task,) = OpinionTask_from(fixtures(), {"orders": 3})
    limited = OpinionTask("opinionqa", fixtures(), limit=1, orders=OrderSpec(3))
    assert len(task.items()) == 6 and [i.id for i in limited.items()] == ["SAFE_W26#o0", "SAFE_W26#o1", "SAFE_W26#o2"]


def test_bad_order_settings_are_refused():
    with pytest.raises(ValueError, match="order_kind='random': unknown"):
        order_spec({"order_kind": "random"}, 0)
    with pytest.raises(ValueError, match="orders=0: expected at least 1"):
        order_spec({"orders": "0"}, 0)
    with pytest.raises(ValueError, match="no question has that many cyclic orders; the most is 6 "
                                         r"\(SAFE_W26, 3 options\)"):
        OpinionTask_from(fixtures(), {"orders": 7})
