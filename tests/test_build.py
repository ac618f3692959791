"""End-to-end ``ava build`` on the real ads: layout, splits, determinism, resume, Ray."""

from __future__ import annotations

import importlib
import json
import sys
from collections import defaultdict
from dataclasses import fields
from pathlib import Path

import pytest

from ava.contracts.instructions import SPLITS, InstructionSample
from ava.instructions.build import build
from ava.instructions.dataset import read_split
from ava.runs import BindingMismatch, RunStatus, is_complete, read_run
from conftest import shared_path

build_mod = importlib.import_module("ava.instructions.build")
TOKEN = "EAAG" + "q9" * 30
BAD_LINES = [
    '{"id": "1", "page_id": "9", "page_name": "Bad", "ad_creative_bodies": ["x"], '
    '"ad_delivery_start_time": "2020-13-45"}',
    "{not json",
    '{"id": "2", "page_id": "9", "page_name": "Bad", "ad_creative_bodies": ["x"], '
    '"ad_delivery_start_time": "2020-10-05", "spend": {"lower_bound": "500", "upper_bound": "100"}}',
    '{"ad_snapshot_url": "https://www.facebook.com/ads/archive/render_ad/?id=3&access_token=' + TOKEN + '", '
    '"page_id": "9", "page_name": "Bad", "ad_creative_bodies": ["x"], "ad_delivery_start_time": "2020-10-05", '
    '"demographic_distribution": [{"percentage": "0.3", "age": "18-24", "gender": "male"}]}',
    "",
    '{"id": "4", "page_id": "9", "page_name": "Bad", "ad_creative_bodies": [""], '
    '"ad_delivery_start_time": "2020-10-05"}',
]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> list[Path]:
    bad = tmp_path_factory.mktemp("bad") / "bad.jsonl"
    first_us = json.loads(shared_path("ads", "us-political-2020-sample.jsonl").open(encoding="utf-8").readline())
    duplicate = json.dumps({**first_us, "id": "999"})  # the same ad under another id
    bad.write_text("\n".join([*BAD_LINES, duplicate]) + "\n", encoding="utf-8")
    return [shared_path("ads"), bad]


OPTIONS = {"shards": 3, "workers": 1, "seed": 0, "heldout_fraction": 0.1}
RAY_EXTRA = "Ray is an optional extra: pip install 'align-via-actions[ray]'"


@pytest.fixture(scope="module")
def built(inputs, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("build") / "out"
    build(inputs, out, **OPTIONS)
    return out


def _files(out: Path) -> dict[str, bytes]:
    """The build's files (its data), without ``_work`` and the run record (which holds times)."""
    assert is_complete(out, "instructions")
    paths = [p for p in out.rglob("*") if p.is_file() and "_work" not in p.parts and p.name != "run.json"]
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(paths)}


@pytest.mark.slow
def test_layout_manifest_and_load_dataset(built, tmp_path):
    import datasets
    import yaml

    m = json.loads((built / "manifest.json").read_text())
    assert m["template_version"] == "1.1" and m["seed"] == 0
    for split in SPLITS:  # 2 x shards parts at most: the workers' empty ones are gone, the rest renumbered
        names = sorted(p.name for p in (built / "data").glob(f"{split}-*.parquet"))
        assert 1 <= len(names) <= 6 and names == [f"{split}-{i:05d}-of-{len(names):05d}.parquet"
                                                   for i in range(len(names))]
    assert not (built / "_work").exists()  # removed after a finished build
    # small: the whole finished build of the real folder (~1,250 ads, 17.6 K samples) under 5 MB
    assert sum(p.stat().st_size for p in built.rglob("*") if p.is_file()) < 5e6
    assert not (built / "jsonl").exists()  # JSONL only when asked
    # the folder as the Hub reads it: exactly the three splits, the card's counts, no warning
    # a fresh datasets cache: datasets reuses a cache made from a folder of the same name whose card
    # says the same (split sizes and bytes), so an earlier build's rows would come back in its order
    ds = datasets.load_dataset(str(built), cache_dir=str(tmp_path / "hf-datasets"))
    assert sorted(ds) == sorted(SPLITS)
    for split in SPLITS:
        assert ds[split].column_names == [f.name for f in fields(InstructionSample)]
        assert len(ds[split]) == m["totals"][split] and ds[split]["id"] == [s.id for s in read_split(built, split)]
    assert set(ds["train"]["task"]) == {t for t, n in m["counts"]["train"].items() if n}
    card = (built / "README.md").read_text(encoding="utf-8")
    header = yaml.safe_load(card.split("---\n")[1])
    assert header["license"] == "other" and header["configs"][0]["data_files"][1] == {
        "split": "test_advertiser", "path": "data/test_advertiser-*.parquet"}
    assert {s["name"]: s["num_examples"] for s in header["dataset_info"]["splits"]} == m["totals"]
    assert {"name": "ad_ids", "list": "string"} in header["dataset_info"]["features"]
    assert f"| train | {m['advertisers']['train']:,} | {m['ads']['train']:,} | {m['totals']['train']:,} |" in card
    # the real US file: 500 read, the 12 removed-content GOP ads dropped, none skipped
    us = m["files"]["us-political-2020-sample.jsonl"]
    assert (us["read"], us["kept"], us["dropped"], us["skipped"]) == (500, 488, {"removed_content": 12}, {})
    assert m["files"]["au-2023-referendum.csv"]["dropped"] == {"empty_body": 19, "removed_content": 1}
    # every TAP task on this data has samples; TAP-R only from US ads
    assert all(m["counts"]["train"][t] > 0 for t in ("TAP-G", "TAP-A", "TAP-R", "TAP-B", "TAP-I"))
    assert sum(m["counts"][s][t] for s in SPLITS for t in m["counts"][s] if t.startswith(("TS", "TC"))) > 0


@pytest.mark.slow
def test_bad_records_are_reported_with_file_and_line_and_no_token(built):
    m = json.loads((built / "manifest.json").read_text())
    bad = m["files"]["bad.jsonl"]
    assert bad["read"] == 6 and bad["kept"] == 1  # the duplicate is valid; the plan drops it
    assert m["steps"]["plan"]["dropped"]["duplicate"] == 1
    ids = {i for split in SPLITS for s in read_split(built, split) for i in s.ad_ids}
    assert "999" not in ids and "3048275685432598" in ids  # the first copy in input order wins
    assert bad["skipped"] == {"bad_date": 1, "invalid_json": 1, "bounds_unordered": 1, "shares_do_not_sum": 1}
    assert bad["dropped"] == {"empty_body": 1}
    skipped = json.loads((built / "skipped.json").read_text())
    assert [(e["file"], e["line"], e["reason"]) for e in skipped] == [
        ("README.md", 0, "unsupported_file"),  # the real folder's README: reported, not read
        ("bad.jsonl", 1, "bad_date"), ("bad.jsonl", 2, "invalid_json"),
        ("bad.jsonl", 3, "bounds_unordered"), ("bad.jsonl", 4, "shares_do_not_sum"),
    ]
    for path in built.rglob("*"):
        if path.is_file():
            assert TOKEN.encode() not in path.read_bytes(), path


@pytest.mark.slow
def test_no_advertiser_or_pair_crosses_splits(built):
    m = json.loads((built / "manifest.json").read_text())
    advertisers: dict[str, set[str]] = defaultdict(set)
    ad_split: dict[str, str] = {}
    for split in SPLITS:
        for s in read_split(built, split):
            advertisers[s.advertiser].add(split)
            for ad_id in s.ad_ids:
                assert ad_split.setdefault(ad_id, split) == split, f"ad {ad_id} in two splits"
    assert all(len(v) == 1 for v in advertisers.values())
    assert all(m["totals"][s] > 0 for s in SPLITS)  # the real folder fills all three splits
    cutoff = m["cutoff"]
    train_ads = {a for a, s in ad_split.items() if s == "train"}
    assert train_ads and m["steps"]["plan"]["dropped"]["after_temporal_cutoff"] > 0
    assert cutoff is not None


@pytest.mark.slow
def test_rebuild_is_byte_identical_and_resume_after_crash(built, inputs, tmp_path, monkeypatch):
    real_pairs = build_mod.pairs_shard

    def crash_on_last_rank(job, rank):
        if rank == 2:
            raise RuntimeError("simulated crash")
        return real_pairs(job, rank)

    out = tmp_path / "again"
    monkeypatch.setenv("AVA_CACHE", str(tmp_path / "cold-cache"))  # vectors computed afresh: same bytes
    monkeypatch.setattr(build_mod, "pairs_shard", crash_on_last_rank)
    with pytest.raises(RuntimeError, match="simulated crash"):
        build(inputs, out, **OPTIONS)
    assert not (out / "manifest.json").exists()  # a crashed build never looks complete
    record = read_run(out)
    assert record.status == RunStatus.FAILED and record.reason == "RuntimeError: simulated crash"
    assert (out / "_work" / "pairs" / "shard-00000.done").exists()
    # _work keeps only what resumption needs: the ads were consumed by the finished samples stage
    assert not (out / "_work" / "ads").exists() and (out / "_work" / "route").exists()
    monkeypatch.setattr(build_mod, "pairs_shard", real_pairs)
    done_before = (out / "_work" / "ingest" / "shard-00000.done").stat().st_mtime_ns
    build(inputs, out, **OPTIONS, keep_work=True)
    assert (out / "_work" / "ingest" / "shard-00000.done").stat().st_mtime_ns == done_before  # skipped
    assert not (out / "_work" / "route").exists()  # consumed by the pairs stage
    assert _files(out) == _files(built)
    # a finished build is recognised (nothing re-run) and a finished one without _work too
    again = build(inputs, out, **OPTIONS)
    assert again.stage_seconds == {} and not (out / "_work").exists()
    assert _files(out) == _files(built)
    with pytest.raises(BindingMismatch, match=r"option pair\.seed: 0 -> 1; option seed: 0 -> 1"):
        build(inputs, out, **{**OPTIONS, "seed": 1})


def test_relaunch_with_other_shard_count_or_inputs_is_refused(tmp_path):
    lines = shared_path("ads", "us-political-2020-sample.jsonl").read_text(encoding="utf-8").splitlines()
    small = tmp_path / "small.jsonl"
    small.write_text("\n".join(lines[:5]) + "\n", encoding="utf-8")
    out = tmp_path / "o"
    build([small], out, shards=2, workers=1)
    with pytest.raises(BindingMismatch, match="option shards: 2 -> 3"):
        build([small], out, shards=3, workers=1)
    small.write_text("\n".join(lines[:6]) + "\n", encoding="utf-8")
    with pytest.raises(BindingMismatch, match="inputs: hash"):
        build([small], out, shards=2, workers=1)
    assert build([small], out, shards=2, workers=1, restart=True).manifest["files"]["small.jsonl"]["read"] == 6


@pytest.mark.slow
def test_ray_engine_writes_the_same_bytes_as_local_on_the_us_ads(tmp_path):
    """The 500 real US ads, local vs Ray Data on a local 2-CPU Ray instance."""
    ray = pytest.importorskip("ray", reason=RAY_EXTRA)
    us = shared_path("ads", "us-political-2020-sample.jsonl")
    build([us], tmp_path / "local", shards=2, workers=1)
    try:
        build([us], tmp_path / "ray", engine="ray", shards=2, workers=2)
    finally:
        ray.shutdown()
    local = _files(tmp_path / "local")
    assert local == _files(tmp_path / "ray")
    assert json.loads(local["manifest.json"])["totals"]["train"] > 0


def test_cli_builds_and_reports_a_shard_mismatch_in_one_line(tmp_path):
    from typer.testing import CliRunner

    from ava.cli import app

    lines = shared_path("ads", "us-political-2020-sample.jsonl").read_text(encoding="utf-8").splitlines()
    small = tmp_path / "small.jsonl"
    small.write_text("\n".join(lines[:8]) + "\n", encoding="utf-8")
    out = tmp_path / "o"
    runner = CliRunner()
    ok = runner.invoke(app, ["build", "--ads", str(small), "--out", str(out), "--shards", "2", "--workers", "1",
                             "--jsonl"])
    assert ok.exit_code == 0, ok.output
    assert "train: " in ok.output and (out / "manifest.json").exists()
    for split in SPLITS:  # the JSONL export: the Parquet rows, in part order
        lines = (out / "jsonl" / f"{split}.jsonl").read_text(encoding="utf-8").splitlines()
        assert [InstructionSample(**{**json.loads(line), "ad_ids": tuple(json.loads(line)["ad_ids"])})
                for line in lines] == read_split(out, split)
    bad = runner.invoke(app, ["build", "--ads", str(small), "--out", str(out), "--shards", "4", "--workers", "1"])
    assert bad.exit_code == 2 and "option shards: 2 -> 4" in bad.output and "--restart" in bad.output


def test_default_shard_count_follows_input_size(shared_data, monkeypatch):
    from ava.ads.readers import discover

    inputs = discover([shared_data / "ads"])
    total = sum(i.path.stat().st_size for i in inputs)
    assert build_mod.auto_shards(inputs) == 8  # 1.5 MB of real ads: the minimum
    monkeypatch.setattr(build_mod, "AUTO_SHARD_BYTES", 100_000)
    assert build_mod.auto_shards(inputs) == -(-total // 100_000) > 8


def test_ray_engine_without_ray_says_how_to_install_it(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from ava.cli import app

    small = tmp_path / "small.jsonl"
    small.write_text(shared_path("ads", "us-political-2020-sample.jsonl").open(encoding="utf-8").readline())
    monkeypatch.setitem(sys.modules, "ray", None)  # as if the [ray] extra were not installed
    result = CliRunner().invoke(app, ["build", "--ads", str(small), "--out", str(tmp_path / "o"), "--engine", "ray"])
    assert result.exit_code == 2
    assert "pip install 'align-via-actions[ray]'" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "o").exists()


def test_a_node_that_cannot_see_the_output_or_an_input_is_reported(tmp_path):
    from ava.instructions.cluster import node_sees

    (tmp_path / "in.jsonl").write_text("{}\n")
    probe, inputs = tmp_path / ".ava-shared-check-x", {str(tmp_path / "in.jsonl"): 3}
    assert node_sees(str(probe), "t0k", inputs)["missing"] == [f"output folder {tmp_path}"]
    probe.write_text("t0k")
    assert node_sees(str(probe), "t0k", inputs)["missing"] == []
    assert node_sees(str(probe), "other", inputs)["missing"] == [f"output folder {tmp_path}"]  # a stale probe
    assert node_sees(str(probe), "t0k", {str(tmp_path / "in.jsonl"): 4})["missing"] == [f"input {tmp_path}/in.jsonl"]


def test_empty_parts_are_removed_so_load_dataset_reads_the_build(tmp_path):
    """A worker with no rows of a split writes an empty part; datasets refuses zero-row Parquet
    files (ArrowInvalid), so compact_parts drops them and renumbers, and an empty split has no file."""
    import datasets

    from ava.instructions.dataset import SCHEMA, DatasetLayout, compact_parts, split_files, write_parquet

    layout = DatasetLayout(tmp_path / "b")
    rows = [InstructionSample(id=f"s{i}", task="TG", family="TG", split="train", prompt=f"p{i}", response="r",
                              advertiser="a", ad_ids=(str(i),), template_version="1.1") for i in range(3)]
    write_parquet(layout.part("train", 0, 3), rows[:2])
    write_parquet(layout.part("train", 1, 3), [])
    write_parquet(layout.part("train", 2, 3), rows[2:])
    for split in SPLITS[1:]:
        write_parquet(layout.part(split, 0, 1), [])
    compact_parts(tmp_path / "b")
    assert sorted(p.name for p in (tmp_path / "b" / "data").iterdir()) == [
        "train-00000-of-00002.parquet", "train-00001-of-00002.parquet"]
    ds = datasets.load_dataset(str(tmp_path / "b"), split="train", cache_dir=str(tmp_path / "cache"))
    assert ds["id"] == [r.id for r in rows] and ds.features.arrow_schema.names == SCHEMA.names
    # the one reader: a split the manifest counts 0 rows of has no file and reads as empty
    assert split_files(tmp_path / "b", "test_temporal", {"totals": {"test_temporal": 0}}) == []
    with pytest.raises(ValueError, match=r"no test_temporal-\*\.parquet files"):
        split_files(tmp_path / "b", "test_temporal")  # without a manifest saying so, missing files are an error
