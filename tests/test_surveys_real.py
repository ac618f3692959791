"""Survey builder on the real Pew ATP waves in ../shared/data (skipped when absent)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pyreadstat
import pytest

from ava.surveys import bundled_dir, load_benchmark
from ava.surveys.build import build_surveys
from ava.surveys.discovery import discover
from ava.surveys.reference import compare_reference
from conftest import shared_path

OQA_WAVES = ["W26", "W27", "W29", "W32", "W34", "W36", "W41", "W42", "W43", "W45", "W49", "W50", "W54", "W82",
             "W92"]


@pytest.fixture(scope="module")
def w26(tmp_path_factory) -> tuple[Path, dict]:
    pew = shared_path("pew-atp", "PEW_ATP_Cleaned")
    out = tmp_path_factory.mktemp("w26")
    res = build_surveys(pew, out, waves=["W26"], workers=1, progress=False, log=lambda s: None)
    return out, res.manifest


def test_weighted_distribution_by_hand(w26):
    """SAFECRIME_W26 recomputed directly with pandas from the labelled .sav."""
    out, _ = w26
    sav = shared_path("pew-atp", "PEW_ATP_Cleaned", "W26_Apr17", "W26_Apr17", "ATP W26.sav")
    df, _ = pyreadstat.read_sav(str(sav), usecols=["SAFECRIME_W26", "WEIGHT_W26", "F_SEX_FINAL",
                                                   "F_RACECMB_RECRUITMENT", "F_HISP_RECRUITMENT"],
                                apply_value_formats=True)
    df = df[df["SAFECRIME_W26"].notna()]
    options = ["Very safe", "Somewhat safe", "Not too safe", "Not at all safe"]

    def by_hand(frame):
        w = frame.groupby("SAFECRIME_W26", observed=True)["WEIGHT_W26"].sum()
        sub = np.array([w.get(o, 0.0) for o in options])
        return sub / sub.sum(), w.get("Refused", 0.0) / w.sum(), len(frame)

    for bench in ("opinionqa", "opinionqa-xl"):
        q = {q.key: q for q in load_benchmark(bench, out)}["SAFECRIME_W26"]
        assert q.options == tuple(options) and q.refusal_options == ("Refused",) and q.weighted
        for (att, grp), frame in [
            (("Overall", "Overall"), df),
            (("SEX", "Female"), df[df["F_SEX_FINAL"] == "Female"]),
            (("RACE", "Hispanic"), df[(df["F_HISP_RECRUITMENT"] == "Yes") & ~df["F_RACECMB_RECRUITMENT"].isin(
                ["White", "Black or African-American", "Asian or Asian-American"])]),
        ]:
            dist, refusal, n = by_hand(frame)
            g = q.group(att, grp)
            assert np.allclose(g.distribution, dist, atol=1e-12), (bench, att, grp)
            assert g.refusal_rate == pytest.approx(refusal) and g.n == n
    # Weighting matters here: the unweighted share of "Very safe" differs from the weighted one.
    overall = {q.key: q for q in load_benchmark("opinionqa", out)}["SAFECRIME_W26"].overall
    assert overall.counts[0] / sum(overall.counts[:4]) == pytest.approx(1169 / 4158)
    assert abs(overall.distribution[0] - 1169 / 4158) > 0.01


def test_question_count_w26(w26):
    out, manifest = w26
    wave = manifest["waves"]["W26"]
    assert wave["weight"]["column"] == "WEIGHT_W26"
    assert wave["unmapped_attributes"] == []
    assert wave["questions"] == 102  # 147 columns: 1 id, 4 admin, 27 demographic, 2 weight, 11 numeric
    assert sum(wave["skipped_columns_by_reason"].values()) == 147 - 102
    assert wave["opinionqa_questions"] == 78
    keys = {q.key for q in load_benchmark("opinionqa-xl", out)}
    assert {q.key for q in load_benchmark("opinionqa", out)} <= keys


def test_every_wave_yields_questions_or_a_reason():
    pew = shared_path("pew-atp", "PEW_ATP_Cleaned")
    manifest = json.loads((bundled_dir() / "manifest.json").read_text())
    waves, _ = discover(pew)
    listed = {s["file"] for s in manifest["skipped_files"]}
    all_sav = [p for p in pew.rglob("*.sav") if "__MACOSX" not in p.parts and not p.name.startswith("._")]
    assert len(all_sav) == len(waves) + len(listed)
    for p in all_sav:
        rel = p.relative_to(pew).as_posix()
        if rel in listed:
            continue
        report = manifest["waves"][next(w.wave for w in waves if w.path == p)]
        assert report["file"] == rel
        assert report["questions"] > 0 or report.get("no_questions_reason"), rel
    assert len(manifest["waves"]) == 110 and manifest["unweighted_waves"] == []  # W8.5: DIARYWEIGHT, by its label


def test_bundled_copy_is_usable_offline():
    oqa = load_benchmark("opinionqa")
    xl = load_benchmark("opinionqa-xl")
    assert len(oqa) == 1506 and sum("steer500" in q.tags for q in oqa) == 498
    assert all(q.topic and q.wave and q.date for q in oqa)
    assert sum(any(t.startswith("cg:") for t in q.tags) for q in oqa) > 1480
    assert len(xl) > 12000 and all(len(q.groups) == 61 for q in xl[:100])
    assert len({q.key for q in xl}) == len(xl) and len({q.key for q in oqa}) == len(oqa)
    assert {q.wave for q in oqa} == set(OQA_WAVES)
    q = oqa[0]
    assert abs(sum(q.overall.distribution) - 1) < 1e-9 and len(q.overall.distribution) == len(q.options)
    w8 = [q for q in xl if q.wave == "W8.5"]
    assert len(w8) == 535 and all(q.weighted and "unweighted" not in q.tags for q in w8)


def same_table(a: Path, b: Path) -> None:
    """Same schema and values. Not the same bytes: a Parquet file records the pyarrow version that
    wrote it, and pyarrow is not pinned (the bundle must survive a pyarrow upgrade)."""
    ta, tb = pq.read_table(a), pq.read_table(b)
    assert ta.schema.equals(tb.schema, check_metadata=False), (a.name, ta.schema, tb.schema)
    assert ta.num_rows == tb.num_rows and ta.equals(tb), a


@pytest.mark.slow
def test_rebuild_matches_bundle_and_reproduces_opinionqa_counts(tmp_path: Path):
    """Rebuild the bundled copy from the raw files: the same tables, manifest and card; OpinionQA's
    released counts exactly, every cell."""
    pew = shared_path("pew-atp", "PEW_ATP_Cleaned")
    res = build_surveys(pew, tmp_path, compact=True, restart=True, progress=False, log=lambda s: None)
    assert res.complete, res.errors
    for name in ["opinionqa/questions.parquet", "opinionqa/distributions.parquet", "opinionqa-xl/questions.parquet",
                 "opinionqa-xl/distributions.parquet"]:
        same_table(tmp_path / name, bundled_dir() / name)
    assert (tmp_path / "manifest.json").read_bytes() == (bundled_dir() / "manifest.json").read_bytes()
    # The card's split sizes in bytes are pyarrow's in-memory sizes: every other byte must match.
    rebuilt, bundled = (re.sub(r"num_bytes: \d+", "num_bytes: N", (d / "README.md").read_text())
                        for d in (tmp_path, bundled_dir()))
    assert rebuilt == bundled

    check = compare_reference(res.benchmarks["opinionqa"], shared_path("opinionqa", "reference_counts"))
    print(f"OpinionQA released counts reproduced: {check.pairs_matched}/{check.pairs} (question, attribute) pairs "
          f"= {check.match_rate:.4f}; {check.cells_matched}/{check.cells} group cells")
    assert len(check.questions) == 684 and check.pairs == 684 * 8 == 5472 and check.cells == 23940
    assert (check.pairs_matched, check.cells_matched, check.mismatches) == (5472, 23940, [])
    # W32's new recruits have race only in F_RACETHN_RECRUITMENT; OpinionQA's counts include them.
    race = res.manifest["waves"]["W32"]["demographics"]["RACE"]
    assert race["respondents_from_fallback"] == {"F_RACETHN_RECRUITMENT": 1517}
    hb = res.manifest["opinionqa"]["human_baselines"]
    print(f"humans average {hb['humans_average']:.4f}, humans worst {hb['humans_worst']:.4f} ({hb['worst_group']})")
    assert 0.9 < hb["humans_average"] < 1 and hb["humans_worst"] < hb["humans_average"]


def test_parquet_readable_by_pandas_and_datasets():
    import datasets
    import pandas as pd

    path = bundled_dir() / "opinionqa" / "questions.parquet"
    frame = pd.read_parquet(path)
    assert len(frame) == 1506 and {"key", "options", "ordinals", "tags"} <= set(frame.columns)
    ds = datasets.Dataset.from_parquet(str(bundled_dir() / "opinionqa" / "distributions.parquet"), keep_in_memory=True)
    assert ds.num_rows == 1506 * 61 and "distribution_e4" in ds.column_names


def test_bundle_loads_with_datasets_by_its_card(tmp_path: Path):
    """README.md's Hub header: `load_dataset(DIR, "opinionqa")` gives the questions, each config its table,
    with the features the card declares (offline; the card's split sizes are checked by datasets)."""
    import datasets
    import yaml

    bundle = bundled_dir()
    manifest = json.loads((bundle / "manifest.json").read_text())
    header = yaml.safe_load((bundle / "README.md").read_text().split("---\n")[1])
    names = [c["config_name"] for c in header["configs"]]
    assert names == ["opinionqa", "opinionqa-distributions", "opinionqa-xl", "opinionqa-xl-distributions"]
    assert header["license"] == "other" and "# Pew ATP survey benchmarks" in (bundle / "README.md").read_text()
    default = datasets.load_dataset(str(bundle), split="test", cache_dir=str(tmp_path))
    oqa = datasets.load_dataset(str(bundle), "opinionqa", split="test", cache_dir=str(tmp_path))
    assert default.num_rows == oqa.num_rows == manifest["counts"]["opinionqa"] == 1506
    schema = pq.read_schema(bundle / "opinionqa" / "questions.parquet")
    assert oqa.features == datasets.Features.from_arrow_schema(schema)
    assert oqa[0]["key"] == load_benchmark("opinionqa")[0].key
    xl = datasets.load_dataset(str(bundle), "opinionqa-xl", split="test", cache_dir=str(tmp_path))
    assert xl.num_rows == manifest["counts"]["opinionqa-xl"]
    groups = datasets.load_dataset(str(bundle), "opinionqa-distributions", split="test", cache_dir=str(tmp_path))
    assert groups.num_rows == 1506 * 61 and {"distribution_e4", "counts"} <= set(groups.column_names)
