"""CultureBank direct evaluation, on fixtures in the exact column layout of the released CSVs.

The real CultureBank files are not available offline; tests/fixtures/culturebank/ holds small
files written for these tests with the released header (see docs/culture-benchmarks.md).
"""

from __future__ import annotations

import csv
import math
import shutil
from pathlib import Path

import pandas as pd
import pytest

from ava.contracts.scoring import ScoredItem
from ava.evals.data import DataNotFound
from ava.evals.task import TaskOptions
from ava.evals.tasks import culturebank as cb

FIXTURES = Path(__file__).parent / "fixtures" / "culturebank"
RELEASED_COLUMNS = [
    "cultural group", "context", "goal", "relation", "actor", "actor_behavior", "recipient", "recipient_behavior",
    "other_descriptions", "topic", "agreement", "num_support_bin", "time_range", "eval_whole_desc",
    "eval_scenario", "eval_persona", "eval_question",
]


def test_fixtures_have_the_released_layout():
    for name in ("culturebank_tiktok.csv", "culturebank_reddit.csv"):
        with open(FIXTURES / name, newline="", encoding="utf-8") as fh:
            assert next(csv.reader(fh)) == RELEASED_COLUMNS


def test_files_found_flat_or_per_source(tmp_path):
    assert cb.find_files(FIXTURES) == {"TikTok": FIXTURES / "culturebank_tiktok.csv",
                                       "Reddit": FIXTURES / "culturebank_reddit.csv"}
    (tmp_path / "tiktok").mkdir()
    shutil.copy(FIXTURES / "culturebank_tiktok.csv", tmp_path / "tiktok")
    assert cb.find_files(tmp_path) == {"TikTok": tmp_path / "tiktok" / "culturebank_tiktok.csv", "Reddit": None}


def test_loader_reads_multiline_fields_and_numbers_rows():
    df, report = cb.load_culturebank(FIXTURES / "culturebank_tiktok.csv")
    assert len(df) == report.rows == 30
    assert list(df["row"]) == list(range(30))
    assert df.loc[3, "other_descriptions"] == 'considered "polite",\nespecially by older people'
    assert df.loc[0, "recipient"] == ""


def test_split_is_the_published_seeded_tail():
    df = pd.DataFrame({"row": range(50)})
    split = cb.test_split(df)
    assert len(split) == 5
    assert list(split["row"]) == list(df.sample(frac=1, random_state=1234)["row"])[-5:]
    assert list(cb.test_split(df)["row"]) == list(split["row"])


def test_tasks_from_fixtures():
    (task,) = cb.make_tasks(TaskOptions(data=FIXTURES))
    items = task.items()
    assert [i.meta["source"] for i in items] == ["TikTok"] * 3 + ["Reddit"] * 2
    item = items[0]
    assert item.request.options == ("Yes", "No")
    assert item.request.segments[-1] == "Your Answer (Yes/No):"
    assert item.request.segments[0] == items[-1].request.segments[0]  # the shared instructions, cached once
    assert '"actor\'s behavior": ' in item.request.prompt and '"goal": ' in item.request.prompt
    df, _ = cb.load_culturebank(FIXTURES / "culturebank_tiktok.csv")
    row = df.iloc[item.meta["row"]]
    assert item.meta["agreement"] == float(row["agreement"]) and item.meta["gold"] == (float(row["agreement"]) > 0.5)
    assert f'"cultural group": "{row["cultural group"]}"' in item.request.prompt


def test_limit_keeps_every_source():
    (task,) = cb.make_tasks(TaskOptions(data=FIXTURES, limit=2))
    assert [i.meta["source"] for i in task.items()] == ["TikTok", "TikTok", "Reddit", "Reddit"]


def test_accuracy_hand_computed():
    (task,) = cb.make_tasks(TaskOptions(data=FIXTURES))
    items = task.items()
    p_yes = [0.9, 0.2, 0.5, 0.7, 0.4]
    scores = {i.id: ScoredItem(i.id, (math.log(p), math.log(1 - p))) for i, p in zip(items, p_yes, strict=True)}
    m = task.metrics(task.score(items, scores))
    gold = [i.meta["gold"] for i in items]
    credit = [0.5 if p == 0.5 else float((p > 0.5) == g) for p, g in zip(p_yes, gold, strict=True)]
    assert m.headline["tiktok"] == pytest.approx(100 * sum(credit[:3]) / 3)
    assert m.headline["reddit"] == pytest.approx(100 * sum(credit[3:]) / 2)
    assert m.tables["by_source"][0]["predicted_yes"] == 1


def test_missing_data_says_where_to_get_it(tmp_path):
    with pytest.raises(DataNotFound, match="SALT-NLP/CultureBank"):
        cb.make_tasks(TaskOptions(data=tmp_path / "nowhere"))


def test_a_missing_file_is_reported(tmp_path):
    shutil.copy(FIXTURES / "culturebank_reddit.csv", tmp_path)
    (task,) = cb.make_tasks(TaskOptions(settings={"culturebank_dir": str(tmp_path)}))
    assert {i.meta["source"] for i in task.items()} == {"Reddit"}
    items = task.items()
    m = task.metrics(task.score(items, {i.id: ScoredItem(i.id, (math.log(0.5), math.log(0.5))) for i in items}))
    assert set(m.headline) == {"reddit"}
    assert "culturebank_tiktok.csv not found" in m.details["skipped_sources"]["TikTok"]


def test_bad_agreement_is_counted_and_a_missing_column_is_an_error(tmp_path):
    df = pd.read_csv(FIXTURES / "culturebank_tiktok.csv", dtype=str, keep_default_na=False)
    held = cb.test_split(df.assign(row=range(len(df))))
    df.loc[held["row"].iloc[0], "agreement"] = ""
    df.to_csv(tmp_path / "culturebank_tiktok.csv", index=False)
    (task,) = cb.make_tasks(TaskOptions(data=tmp_path))
    assert len(task.items()) == 2
    report = task.reports["TikTok"]
    assert report.dropped == {"missing or malformed agreement": 1}
    assert report.messages == [f"{tmp_path / 'culturebank_tiktok.csv'}:row {held['row'].iloc[0]}: "
                               "agreement ''; row dropped"]
    df.drop(columns=["actor_behavior"]).to_csv(tmp_path / "culturebank_tiktok.csv", index=False)
    with pytest.raises(ValueError, match="actor_behavior"):
        cb.make_tasks(TaskOptions(data=tmp_path))


@pytest.mark.slow
def test_smollm2_answers_yes_or_no(smollm2_scorer):
    (task,) = cb.make_tasks(TaskOptions(data=FIXTURES, limit=1))
    items = task.items()
    scores = {s.id: s for s in smollm2_scorer.score([i.request for i in items])}
    assert all(s.letter_mass > 0.05 for s in scores.values())
    m = task.metrics(task.score(items, scores))
    assert set(m.headline) == {"tiktok", "reddit"}
