"""Benchmark data shipped with the package: the GlobalOpinionQA subset (its card, its use when no
data is found), and CultureNLI left out with its reason (a fresh machine: an empty data root)."""

from __future__ import annotations

import hashlib
import json

import pytest

from ava.evals import suites
from ava.evals.data import DataNotFound
from ava.evals.runner import run_tasks
from ava.evals.task import TaskOptions
from ava.evals.tasks import culturenli
from ava.evals.tasks import globalopinionqa as goqa
from ava.models.scorer import UniformScorer
from ava.paths import bundled
from conftest import shared_path

BUNDLED_CSV = bundled(*goqa.BUNDLED)


def test_card_matches_the_bundled_file():
    card = goqa.bundled_card()
    raw = BUNDLED_CSV.read_bytes()
    assert card["file"] == BUNDLED_CSV.name
    assert card["sha256"] == hashlib.sha256(raw).hexdigest()
    assert card["bytes"] == len(raw)
    questions, report = goqa.load_globalopinionqa(BUNDLED_CSV)
    assert not report.dropped and not report.repaired
    assert card["questions"] == len(questions) == 1270
    assert card["pairs"] == sum(len(q.selections) for q in questions) == 5752
    assert card["countries"] == len({c for q in questions for c in q.selections}) == 130
    assert card["licence"] == "CC BY-NC-SA 4.0"
    text = (BUNDLED_CSV.parent / "README.md").read_text(encoding="utf-8")
    assert "license: cc-by-nc-sa-4.0" in text and "modular_pluralism" in text and card["sha256"] in text


def test_bundled_file_is_the_shared_subset_byte_for_byte():
    shared = shared_path("globalopinionqa", "global_opinions_subset.csv")
    assert shared.read_bytes() == BUNDLED_CSV.read_bytes()


def test_no_data_found_uses_the_bundled_subset_and_says_so(tmp_path, capsys):
    (task,) = goqa.make_tasks(TaskOptions(limit=2, settings={"data_root": str(tmp_path)}))
    err = capsys.readouterr().err
    assert f"data not found at {tmp_path / 'globalopinionqa'}" in err
    assert "using the subset bundled with ava (1,270 questions, CC BY-NC-SA 4.0" in err
    assert task.source["source"] == "bundled" and task.source["licence"] == "CC BY-NC-SA 4.0"
    results = run_tasks([task], UniformScorer(), tmp_path / "run", progress=False)
    data = results["tasks"]["globalopinionqa"]["details"]["data"]
    assert data["source"] == "bundled" and data["path"] == str(BUNDLED_CSV)
    assert data["sha256"] == goqa.bundled_card()["sha256"] and "Durmus" in data["attribution"]


def test_data_under_the_root_is_preferred_to_the_bundled_copy(tmp_path, capsys):
    folder = tmp_path / "globalopinionqa"
    folder.mkdir()
    sel = "defaultdict(<class 'list'>, {'Spain': [0.6, 0.4]})"
    (folder / "global_opinions_subset.csv").write_text(
        f'question,selections,options,source\n"Q?","{sel}","[\'Yes\', \'No\']",GAS\n', encoding="utf-8")
    (task,) = goqa.make_tasks(TaskOptions(settings={"data_root": str(tmp_path)}))
    assert task.source["source"] == "data root" and len(task.questions) == 1
    assert "bundled" not in capsys.readouterr().err


def test_a_path_given_that_does_not_exist_is_an_error_not_a_fallback(tmp_path):
    with pytest.raises(DataNotFound, match="absent.csv"):
        goqa.make_tasks(TaskOptions(data=tmp_path / "absent.csv"))


def test_culturenli_is_not_bundled_and_says_why_and_where_to_get_it(tmp_path):
    with pytest.raises(DataNotFound) as exc:
        culturenli.make_tasks(TaskOptions(settings={"data_root": str(tmp_path)}))
    message = str(exc.value)
    assert "not bundled" in message and "no licence" in message
    assert "github.com/SALT-NLP/CulturallyAwareNLI" in message and "--data PATH" in message


def test_quick_suite_on_a_fresh_machine_prints_every_column_it_can(tmp_path, capsys):
    """An empty data root: OQA-XL, OQA (bundled survey data) and GOQA (bundled subset) are scored;
    CultureNLI and CultureBank are skipped, each with its reason."""
    empty = tmp_path / "no-data"
    empty.mkdir()
    summary = suites.run_suite("quick", UniformScorer(), tmp_path / "run", limit=2,
                               settings={"data_root": str(empty)}, progress=False)
    row = summary["rows"]["uniform"]
    for column in ("OQA-XL Rep", "OQA-XL Steer", "OQA Rep", "OQA Steer", "GOQA Sim", "GOQA Skew"):
        assert row[column] is not None, column
    for column in ("CNLI US", "CNLI IN", "CB Reddit", "CB TikTok"):
        assert row[column] is None, column
    assert set(summary["skipped"]) == {"culturenli", "culturebank"}
    assert "no licence" in summary["skipped"]["culturenli"]
    assert "SALT-NLP/CultureBank" in summary["skipped"]["culturebank"]
    out = capsys.readouterr().out
    assert "CultureNLI: skipped (data not found" in out and "CultureBank: skipped (data not found" in out
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    assert saved["tasks"]["globalopinionqa"]["details"]["data"]["source"] == "bundled"
