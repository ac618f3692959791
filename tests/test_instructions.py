"""Instruction rendering and pair rules, on real ads and on hand-made ones."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

import numpy as np
import pytest

from ava.ads.normalise import normalise
from ava.ads.readers import InputFile, iter_raw
from ava.ads.signals import compute_signals
from ava.contracts.ads import Ad, AdRecord, AdSignals, Bounds, SourceRef
from ava.instructions.pairs import PairConfig, mine_brand, pair_tasks, similar_body_pairs
from ava.instructions.samples import ad_samples
from ava.instructions.templates import ALL_TASKS, load_templates
from conftest import shared_path


def _real(ad_id: str) -> Ad:
    path = shared_path("ads", "us-political-2020-sample.jsonl")
    for raw in iter_raw(InputFile(path, path.name)):
        if raw.data["id"] == ad_id:
            return compute_signals(normalise(raw.data, raw.source))
    raise AssertionError(ad_id)


def _ad(ad_id: str, *, age=None, gender=None, ages=None, genders=None, ranking=(), shares=None,
        spend=(0, 99), impressions=(0, 999), text="x") -> Ad:
    record = AdRecord(ad_id=ad_id, page_id="p", page_name="Brand", body=text, source=SourceRef("f", 1, "jsonl"),
                      start_date="2020-10-01", spend=Bounds(*spend), impressions=Bounds(*impressions))
    signals = AdSignals(text=text, content_key=ad_id, best_age=age, best_gender=gender, age_shares=ages or {},
                        gender_shares=genders or {}, region_ranking=tuple(ranking), region_shares=shares or {})
    return Ad(record, signals)


def test_templates_cover_18_subtasks_with_a_version():
    t = load_templates()
    assert len(ALL_TASKS) == 18 and set(ALL_TASKS) <= set(t.tasks)
    assert t.version == "1.1"


def test_real_ad_gives_all_ten_per_ad_samples_with_normalised_labels():
    t = load_templates()
    dropped: Counter[str] = Counter()
    ad = _real("3141096542785945")  # labels verified by hand in test_ads.py
    assert {s.task for s in ad_samples(t, ad, "train", Counter(), families=("TAP",))} == set(ALL_TASKS[:5])
    ad = Ad(ad.record, replace(ad.signals, keywords=("vote", "ballot")))  # the build fills them (KeyBERT)
    samples = {s.task: s for s in ad_samples(t, ad, "train", dropped)}
    assert sorted(samples) == sorted(ALL_TASKS[:10]) and not dropped
    assert "\nKeywords: vote, ballot\n" in samples["TAG-A"].prompt
    assert samples["TAP-A"].label == "55-64"
    assert samples["TAP-G"].label == "male"
    assert samples["TAP-R"].label == "Wyoming|Alaska|West Virginia"
    assert samples["TAP-B"].label == "0-99" and samples["TAP-I"].label == "0-999"
    assert samples["TAP-G"].response == "Best target audience for this ad is Male."
    top3 = "Wyoming, Alaska, West Virginia"
    assert samples["TAP-R"].response == f"Top 3 states where the ad will perform best are {top3}."
    for s in samples.values():
        assert s.prompt.endswith("\nAnswer:") and s.template_version == t.version and s.ad_ids == (ad.record.ad_id,)
        assert s.family == s.task.split("-")[0] and s.advertiser == "123192635089"
    # the predicted quantity is never in the prompt
    assert "It spent" not in samples["TAP-B"].prompt and "impressions." not in samples["TAP-I"].prompt
    assert "25 October 2020" in samples["TAP-A"].prompt  # day-month-year dates
    assert samples["TAG-G"].label is None and samples["TAG-G"].response.endswith(ad.signals.text)


def test_missing_signals_are_counted_not_made():
    t = load_templates()
    dropped: Counter[str] = Counter()
    ad = _ad("1", text="Fresh pizza deals", spend=(0, 99))
    ad = Ad(replace(ad.record, impressions=None), ad.signals)
    tasks = {s.task for s in ad_samples(t, ad, "train", dropped)}
    assert tasks == {"TAP-B"}  # no keywords in AdSignals here, so no TAG
    assert dropped["TAP-G:no_gender"] == 1 and dropped["TAP-R:no_us_regions"] == 1
    assert dropped["TAP-I:no_impressions"] == 1 and dropped["TAG-B:no_keywords"] == 1


def test_ts_rules_order_the_weaker_ad_first():
    weak = _ad("w", age="25-34", gender="male", ages={"25-34": 0.3}, genders={"male": 0.6},
               ranking=["Ohio"], shares={"Ohio": 0.4}, spend=(0, 99), impressions=(0, 999))
    strong = _ad("s", age="25-34", gender="male", ages={"25-34": 0.5}, genders={"male": 0.7},
                 ranking=["Ohio"], shares={"Ohio": 0.9}, spend=(100, 199), impressions=(1000, 4999))
    forward = {task for task, _, _ in pair_tasks(weak, strong, 3)}
    assert forward == {"TS-B", "TS-A", "TS-G", "TS-R"}  # TS-E needs equal budgets
    assert not {task for task, _, _ in pair_tasks(strong, weak, 3)} & {"TS-B", "TS-A", "TS-G", "TS-R"}
    same_budget = _ad("e", age="25-34", gender="male", ages={"25-34": 0.2}, genders={"male": 0.5},
                      spend=(0, 99), impressions=(1000, 4999))
    assert "TS-E" in {t for t, _, _ in pair_tasks(weak, same_budget, 3)}


def test_tc_rules_need_a_different_best_group_and_a_rank_gap():
    src = _ad("a", age="25-34", gender="male", ages={"25-34": 0.5}, genders={"male": 0.6},
              ranking=["Ohio", "Iowa", "Maine", "Texas", "Utah"], shares={})
    tgt = _ad("b", age="65+", gender="female", ages={"65+": 0.5}, genders={"female": 0.6},
              ranking=["Texas", "Ohio"], shares={})
    found = {task: (s, t) for task, s, t in pair_tasks(src, tgt, 3)}
    assert found["TC-A"] == ("25-34", "65+") and found["TC-G"] == ("male", "female")
    assert found["TC-R"] == ("Ohio", "Texas")  # Texas is 4th for the source: rank gap 3
    near = _ad("c", ranking=["Maine"], shares={})
    assert "TC-R" not in {t for t, _, _ in pair_tasks(src, near, 3)}  # Maine is 3rd: gap 2


def test_similar_pairs_need_similarity_and_enough_word_edits():
    cfg = PairConfig(min_word_edits=3, block_size=2)
    keys = ["a", "b", "c"]
    vecs = np.array([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0]], dtype=np.float32)  # cos(a,b)=0.8, (b,c)=0.6
    tokens = {"a": ["w1", "w2", "w3", "w4", "w5"], "b": ["v1", "v2", "v3", "v4", "v5"], "c": ["u1"]}
    counts: Counter[str] = Counter()
    assert similar_body_pairs(keys, vecs, tokens, replace(cfg, block_size=3), counts) == [("a", "b")]
    tokens["b"] = ["w1", "w2", "w3", "w4", "x"]  # one word edit: too close to be a rewrite
    assert similar_body_pairs(keys, vecs, tokens, replace(cfg, block_size=3), Counter()) == []
    # blocks bound the work: with block_size 2, at most one comparison per block
    counts = Counter()
    similar_body_pairs(keys, vecs, tokens, cfg, counts)
    assert counts["body_pairs_compared"] == 1


def test_brand_cap_keeps_a_fixed_subset():
    t = load_templates()
    ads, vectors = [], {}
    for i in range(6):
        text = " ".join(f"w{i}{j}" for j in range(20))
        ads.append(_ad(str(i), age="25-34", gender="male", ages={"25-34": 0.1 * (i + 1)},
                       genders={"male": 0.55}, text=text))
    from ava.instructions.pairs import text_key

    for ad in ads:
        vectors[text_key(ad.signals.text)] = np.array([1.0, 0.0], dtype=np.float32)
    cfg = PairConfig(max_pairs_per_brand=4)
    counts: Counter[str] = Counter()
    first = mine_brand(t, ads, "train", vectors, cfg, counts)
    assert Counter(s.task for s in first)["TS-A"] == 4
    assert counts["TS-A:candidates"] == 15 and counts["TS-A:over_brand_cap"] == 11
    again = mine_brand(t, list(reversed(ads)), "train", vectors, cfg, Counter())
    assert [s.id for s in first] == [s.id for s in again]  # input order does not matter
    for s in first:
        if s.task == "TS-A":
            weak, strong = (int(i) for i in s.ad_ids)
            assert weak < strong and s.source_text == ads[weak].signals.text


@pytest.mark.parametrize("task", ["TS-R", "TC-G"])
def test_pair_prompts_render(task):
    t = load_templates()
    x = _ad("1", gender="male", genders={"male": 0.6}, ranking=["Ohio"], shares={"Ohio": 0.2}, text="Old ad")
    y = _ad("2", gender="female", genders={"female": 0.6}, ranking=["Ohio"], shares={"Ohio": 0.9}, text="New ad")
    from ava.instructions.pairs import render_pair

    s = render_pair(t, task, x, y, "male" if task == "TC-G" else "Ohio", "female" if task == "TC-G" else "Ohio",
                    "train")
    assert s.prompt.endswith("Answer:") and "Old ad" in s.prompt and s.response.endswith("New ad")
    assert s.family == task[:2] and s.ad_ids == ("1", "2") and s.label is None
