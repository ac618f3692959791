"""Bad-input and fault catalogue of ``ava data build-surveys`` and ``ava.surveys.load_benchmark``.

One test per case. Each asserts the exact behaviour a user meets: the exit code (2: refused before
any wave is read, 1: the build ran and is incomplete), a one-line ``error:`` naming the file and the
reason, no traceback, and no output that looks like a finished build (no README.md / Parquet files,
and a manifest, if any, that says ``complete: false``). Damaged inputs are small synthetic waves
written with pyreadstat (``test_surveys_units.write_wave``) beside synthetic OpinionQA metadata.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ava.cli import app
from ava.runs import RunStatus, read_run
from ava.surveys import SurveyDataError, load_benchmark
from catalogue import run_unprivileged
from test_surveys_units import write_metadata, write_wave

WAVE = Path("W7_Sep14") / "W7_Sep14" / "ATP W7.sav"


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """``tmp_path/pew`` with one good wave (W7) and the metadata beside it, as in shared/data."""
    write_wave(tmp_path / "pew" / WAVE, "W7")
    write_metadata(tmp_path)
    return tmp_path


def build(tree: Path, *args: str, out: Path | None = None):
    out = out or tree / "out"
    return CliRunner().invoke(app, ["data", "build-surveys", "--pew-dir", str(tree / "pew"), "--out", str(out),
                                    "--workers", "1", "--no-progress", *args])


def refused(result, code: int, *needles: str) -> str:
    """The one error line holding every needle; the exit code; no traceback anywhere."""
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    lines = [line for line in result.output.splitlines() if line.startswith("error: ")
             and all(n in line for n in needles)]
    assert lines, f"no error line with {needles}:\n{result.output}"
    return lines[0]


def looks_unfinished(out: Path) -> None:
    """Nothing a reader could take for a finished build."""
    assert not (out / "README.md").exists()
    assert not list(out.glob("*/*.parquet"))
    if (out / "manifest.json").exists():
        assert json.loads((out / "manifest.json").read_text())["complete"] is False
    with pytest.raises((SurveyDataError, FileNotFoundError)):
        load_benchmark("opinionqa-xl", out)


def nothing_written(tree: Path) -> None:
    """Refused before any work: no output folder, or an untouched one."""
    assert not (tree / "out").exists()


# -- the cases of issue 12 ------------------------------------------------------------------------
def test_every_demographic_label_unmappable(tree: Path):
    """Before: exit 0, ok: true, 60 empty groups. Now: the wave makes the build incomplete."""
    write_wave(tree / "pew" / WAVE, "W7", sex_labels={1.0: "Masculino", 2.0: "Femenino"})
    sav = tree / "pew" / WAVE
    # Region labels in another language too: no attribute of the wave maps to a group.
    import pyreadstat

    frame, meta = pyreadstat.read_sav(str(sav))
    labels = dict(meta.variable_value_labels)
    labels["F_CREGION"] = {1.0: "Nordeste", 2.0: "Medio Oeste", 3.0: "Sur", 4.0: "Oeste"}
    pyreadstat.write_sav(frame, str(sav), column_labels=meta.column_labels, variable_value_labels=labels)
    result = build(tree)
    line = refused(result, 1, str(sav), "demographics cannot be mapped", "F_SEX", "Masculino")
    assert "demographics.yaml" in line
    refused(result, 1, str(sav), "F_CREGION", "Nordeste")
    refused(result, 1, "build incomplete")
    looks_unfinished(tree / "out")


def test_one_attribute_unmappable(tree: Path):
    write_wave(tree / "pew" / WAVE, "W7", sex_labels={1.0: "Masculino", 2.0: "Femenino"})
    refused(build(tree), 1, str(tree / "pew" / WAVE), "SEX: no value label of F_SEX names a SEX group")
    looks_unfinished(tree / "out")


def test_wave_without_any_demographic_column(tree: Path):
    write_wave(tree / "pew" / WAVE, "W7", demographics=False)
    refused(build(tree), 1, str(tree / "pew" / WAVE), "no demographic column of any attribute")
    looks_unfinished(tree / "out")


def test_opinionqa_metadata_missing(tree: Path):
    """Before: printed "error" and exited 0. Now: one line, exit 2, before any wave is read."""
    shutil.rmtree(tree / "opinionqa")
    refused(build(tree), 2, str(tree / "pew"), "OpinionQA's metadata not found", "--opinionqa-dir", "--sav-only")
    nothing_written(tree)


def test_opinionqa_dir_is_not_opinionqa(tree: Path):
    (tree / "elsewhere").mkdir()
    refused(build(tree, "--opinionqa-dir", str(tree / "elsewhere")), 2, "elsewhere",
            "not OpinionQA's human_resp folder")
    nothing_written(tree)


def test_opinionqa_steering_set_missing(tree: Path):
    shutil.rmtree(tree / "opinionqa" / "human_resp" / "Pew_American_Trends_Panel_disagreement_500")
    refused(build(tree), 2, "human_resp", "no steering set")
    nothing_written(tree)


def test_question_texts_missing(tree: Path):
    (tree / "questions" / "opinionqa-xl.json").unlink()
    refused(build(tree), 2, str(tree / "questions" / "opinionqa-xl.json"), "not found", "--questions-dir")
    nothing_written(tree)


def test_truncated_sav(tree: Path):
    """Before: the manifest said complete and `ava eval` crashed on an empty array. Now: incomplete."""
    sav = tree / "pew" / WAVE
    sav.write_bytes(sav.read_bytes()[:700])
    result = build(tree)
    refused(result, 1, str(sav), "cannot read as an SPSS .sav file")
    looks_unfinished(tree / "out")
    manifest = json.loads((tree / "out" / "manifest.json").read_text())
    assert manifest["waves"]["W7"]["error"].startswith(str(sav))


def test_non_utf8_sav(tree: Path):
    sav = tree / "pew" / WAVE
    sav.write_bytes(sav.read_bytes().replace(b"Very safe", b"Very saf\xff"))
    refused(build(tree), 1, str(sav), "invalid byte sequence")
    looks_unfinished(tree / "out")


def test_corrupt_json(tree: Path):
    path = tree / "questions" / "opinionqa-xl.json"
    path.write_text(path.read_text()[:-3])
    refused(build(tree), 2, f"{path}:1: not valid JSON")
    nothing_written(tree)


def test_non_utf8_json(tree: Path):
    path = tree / "questions" / "survey-details.json"
    path.write_bytes(path.read_bytes().replace(b"Crime", b"Crim\xe9"))
    refused(build(tree), 2, str(path), "not UTF-8")
    nothing_written(tree)


def test_json_of_the_wrong_shape(tree: Path):
    path = tree / "questions" / "survey-details.json"
    path.write_text('{"W7": "Crime"}')
    refused(build(tree), 2, str(path), "expected a JSON array")
    nothing_written(tree)


def test_topic_mapping_of_the_wrong_shape(tree: Path):
    path = tree / "opinionqa" / "topic_mapping.json"
    path.write_text('{"q [a/b]": ["Crime"]}')
    refused(build(tree), 2, str(path), "is not {'cg'")
    nothing_written(tree)


def test_non_utf8_csv(tree: Path):
    path = tree / "opinionqa" / "human_resp" / "American_Trends_Panel_W7" / "info.csv"
    path.write_bytes(path.read_bytes().replace(b"community", b"communit\xe9"))
    refused(build(tree), 2, str(path), "not UTF-8")
    nothing_written(tree)


def test_csv_without_a_needed_column(tree: Path):
    path = tree / "opinionqa" / "human_resp" / "American_Trends_Panel_W7" / "info.csv"
    path.write_text(path.read_text().replace("option_ordinal", "ordinal"))
    refused(build(tree), 2, str(path), "no column option_ordinal")
    nothing_written(tree)


def test_csv_row_that_does_not_parse(tree: Path):
    path = tree / "opinionqa" / "human_resp" / "American_Trends_Panel_W7" / "info.csv"
    path.write_text(path.read_text().replace("[1.0, 2.0]", "[1.0, 2.0"))
    refused(build(tree), 2, f"{path}:2:", "cannot parse OpinionQA info row")
    nothing_written(tree)


def test_reference_counts_corrupt_is_found_before_the_waves(tree: Path):
    path = tree / "opinionqa" / "reference_counts" / "American_Trends_Panel_W7" / "SEX_data.json"
    path.write_text('{"SAFE_W7": {"Male": {"Very safe": "many"}}}')
    refused(build(tree), 2, str(path), "is not {group: {option: count}}")
    nothing_written(tree)


# -- siblings --------------------------------------------------------------------------------------
def test_wave_without_a_weight_we_know(tree: Path):
    """Before: built unweighted, exit 0. Now: incomplete unless declared or allowed."""
    write_wave(tree / "pew" / WAVE, "W7", weights=False)
    refused(build(tree), 1, str(tree / "pew" / WAVE), "no survey weight the rules can choose (no weight column)",
            "--allow-unweighted")
    looks_unfinished(tree / "out")
    allowed = build(tree, "--allow-unweighted")
    assert allowed.exit_code == 0, allowed.output
    manifest = json.loads((tree / "out" / "manifest.json").read_text())
    assert manifest["unweighted_waves"] == ["W7"] and "W7: built unweighted (--allow-unweighted: no weight column)" in (
        allowed.output)
    assert all("unweighted" in q.tags for q in load_benchmark("opinionqa-xl", tree / "out"))


SUBGROUPS_ONLY = {"WEIGHT_W7_LAT": ([1, 3, 2, 1, 1, 5], "Weight for Hispanic adults"),
                  "WEIGHT_W7_ASIAN": ([2, 1, 1, 1, 1, 1], "Weight for Asian adults")}


def test_wave_whose_weights_no_rule_can_choose_between(tree: Path):
    """Subgroup weights only: a person could not say which weight the wave's distributions use either.
    Refused naming the file, the candidates and what to do; the rerun with --weight (no --restart: the
    option is not bound, the wave's cache is keyed by it) builds it."""
    sav = tree / "pew" / WAVE
    write_wave(sav, "W7", weights=SUBGROUPS_ONLY)
    refused(build(tree), 1, str(sav), "the weight rules cannot choose its survey weight",
                   "no full-sample weight among WEIGHT_W7_LAT (subgroup or sample weight: LAT)", "--weight W7=COLUMN",
                   "one of WEIGHT_W7_LAT, WEIGHT_W7_ASIAN", "--allow-unweighted")
    looks_unfinished(tree / "out")
    result = build(tree, "--weight", "W7=WEIGHT_W7_ASIAN")
    assert result.exit_code == 0, result.output
    weight = json.loads((tree / "out" / "manifest.json").read_text())["waves"]["W7"]["weight"]
    assert (weight["column"], weight["rule"]) == ("WEIGHT_W7_ASIAN", "named")
    assert "weights by rule: named 1" in result.output


def test_wave_with_two_full_sample_weights(tree: Path):
    sav = tree / "pew" / WAVE
    write_wave(sav, "W7", weights={"WEIGHT_W7_FINAL": ([1, 1, 1, 1, 1, 1], "Final weight"),
                                   "WEIGHT_GP": ([2, 1, 1, 1, 1, 1], "General population weight")})
    refused(build(tree), 1, str(sav), "several weights named as the full sample's: WEIGHT_W7_FINAL, WEIGHT_GP",
            "--weight W7=COLUMN")
    looks_unfinished(tree / "out")


def test_wave_whose_only_weight_is_dated(tree: Path):
    sav = tree / "pew" / WAVE
    write_wave(sav, "W7", weights={"WEIGHT_JUN24_W7": ([1, 1, 1, 1, 1, 1], "Weight for respondents before June 24")})
    refused(build(tree), 1, str(sav), "its only weight is a dated weight", "WEIGHT_JUN24_W7", "--weight W7=COLUMN")
    looks_unfinished(tree / "out")


def test_weight_option_names_a_missing_column(tree: Path):
    sav = tree / "pew" / WAVE
    refused(build(tree, "--weight", "W7=WEIGHT_W7_FINAL"), 2, str(sav), "--weight W7=WEIGHT_W7_FINAL: no such column",
            "its weight columns: WEIGHT_W7, WEIGHT_W1W7")
    nothing_written(tree)


def test_weight_option_names_a_text_column(tree: Path):
    import pyreadstat

    sav = tree / "pew" / WAVE
    frame, meta = pyreadstat.read_sav(str(sav))
    frame["WEIGHT_NOTE"] = ["a", "b", "c", "d", "e", "f"]
    pyreadstat.write_sav(frame, str(sav), column_labels=[*meta.column_labels, "Note"],
                         variable_value_labels=meta.variable_value_labels)
    refused(build(tree, "--weight", "W7=WEIGHT_NOTE"), 2, str(sav), "--weight W7=WEIGHT_NOTE: a text column")
    nothing_written(tree)


def test_weight_option_for_a_wave_not_built(tree: Path):
    refused(build(tree, "--weight", "W8=WEIGHT_W8"), 2, "--weight W8=WEIGHT_W8: W8 is not among the waves being built")
    nothing_written(tree)


def test_weight_option_not_wave_equals_column(tree: Path):
    refused(build(tree, "--weight", "WEIGHT_W7"), 2, "--weight WEIGHT_W7: not WAVE=COLUMN", "--weight W26=WEIGHT_W26")
    nothing_written(tree)


def test_weight_option_naming_two_columns_for_one_wave(tree: Path):
    refused(build(tree, "--weight", "W7=WEIGHT_W7", "--weight", "7=WEIGHT_W1W7"), 2,
            "--weight W7: named twice (WEIGHT_W7, WEIGHT_W1W7); keep one")
    nothing_written(tree)


def test_duplicate_wave_files_that_differ(tree: Path):
    other = tree / "pew" / "W7_copy" / "ATP W7.sav"
    write_wave(other, "W7", weights=False)
    refused(build(tree), 2, "a second, different file for the wave of", "ATP W7.sav")
    nothing_written(tree)


def test_duplicate_wave_files_that_are_identical(tree: Path):
    copy = tree / "pew" / "W7_copy" / "ATP W7.sav"
    copy.parent.mkdir()
    shutil.copy(tree / "pew" / WAVE, copy)
    result = build(tree)
    assert result.exit_code == 0, result.output
    assert "skipped W7_copy/ATP W7.sav: identical copy of W7_Sep14/W7_Sep14/ATP W7.sav" in result.output


def test_output_is_a_file(tree: Path):
    (tree / "out").write_text("keep me")
    refused(build(tree), 2, f"{tree / 'out'} is a file; --out needs a folder here")
    assert (tree / "out").read_text() == "keep me"


def test_output_under_a_file(tree: Path):
    (tree / "file").write_text("keep me")
    refused(build(tree, out=tree / "file" / "out"), 2, str(tree / "file" / "out"),
            f"{tree / 'file'} is a file, so nothing can be created under it")


def test_output_read_only(tree: Path):
    (tree / "out").mkdir()
    (tree / "out").chmod(0o555)
    try:
        proc = run_unprivileged(["data", "build-surveys", "--pew-dir", str(tree / "pew"), "--out", str(tree / "out"),
                                 "--workers", "1", "--no-progress"], tree)
    finally:
        (tree / "out").chmod(0o755)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert f"error: {tree / 'out'}: cannot write in {tree / 'out'} (Permission denied)" in proc.stderr
    assert not list((tree / "out").iterdir())


def test_a_file_in_the_way_of_the_output(tree: Path):
    (tree / "out").mkdir()
    (tree / "out" / "opinionqa").write_text("not a folder")
    refused(build(tree), 2, str(tree / "out" / "opinionqa"), "in the way")
    assert not (tree / "out" / ".cache").exists()  # before the expensive work


def test_requested_wave_not_found(tree: Path):
    refused(build(tree, "--wave", "W99"), 2, str(tree / "pew"), "no 'ATP W<n>.sav' file for --wave W99")
    nothing_written(tree)


def test_no_wave_files(tree: Path):
    shutil.rmtree(tree / "pew" / "W7_Sep14")
    refused(build(tree), 2, str(tree / "pew"), "no Pew ATP wave files")
    nothing_written(tree)


def test_pew_dir_missing(tree: Path):
    shutil.rmtree(tree / "pew")
    refused(build(tree), 2, str(tree / "pew"), "no such folder")
    nothing_written(tree)


def test_sav_only_with_metadata_folders(tree: Path):
    refused(build(tree, "--sav-only", "--opinionqa-dir", str(tree / "opinionqa")), 2, "--sav-only")
    nothing_written(tree)


def test_rerun_with_other_options_is_refused_saying_what_differs(tree: Path):
    assert build(tree).exit_code == 0
    line = refused(build(tree, "--compact"), 2, str(tree / "out"), "option compact: False -> True", "--restart")
    assert "was produced with other settings" in line
    assert read_run(tree / "out").complete  # the finished build is untouched


def test_rerun_with_other_wave_files_is_refused(tree: Path):
    assert build(tree).exit_code == 0
    write_wave(tree / "pew" / "W8_Oct14" / "ATP W8.sav", "W8")
    refused(build(tree), 2, str(tree / "out"), "inputs: hash")


def test_restart_and_its_old_spelling_start_over(tree: Path):
    assert build(tree).exit_code == 0
    (tree / "out" / ".cache" / "stale.pkl").write_bytes(b"x")
    assert build(tree, "--restart", "--compact").exit_code == 0
    assert not (tree / "out" / ".cache" / "stale.pkl").exists() and read_run(tree / "out").binding.options["compact"]
    (tree / "out" / ".cache" / "stale.pkl").write_bytes(b"x")
    result = build(tree, "--no-resume")  # the old spelling of --restart, hidden from --help
    assert result.exit_code == 0, result.output
    assert not (tree / "out" / ".cache" / "stale.pkl").exists()
    assert not read_run(tree / "out").binding.options["compact"]
    assert "--no-resume" not in CliRunner().invoke(app, ["data", "build-surveys", "--help"]).output


def test_second_writer_is_refused_naming_the_holder(tree: Path):
    from ava.runs import OutputLock

    (tree / "out").mkdir()
    with OutputLock(tree / "out" / ".lock", tree / "out"):
        refused(build(tree), 2, str(tree / "out"), "is being written by another process (pid")
    assert not (tree / "out" / "run.json").exists()


def test_a_build_of_an_older_ava_without_a_record_is_refused(tree: Path):
    assert build(tree).exit_code == 0
    (tree / "out" / "run.json").unlink()
    refused(build(tree), 2, str(tree / "out"), "holds opinionqa but no run record", "--restart")
    with pytest.raises(SurveyDataError, match=r"no run record \(run.json\) saying the build finished.*--restart"):
        load_benchmark("opinionqa", tree / "out")
    assert build(tree, "--restart").exit_code == 0


def test_killed_build_is_recorded_unfinished_and_resumes(tree: Path):
    """A build killed (-9) mid-run leaves its record at running: unusable, and the rerun finishes it."""
    import signal
    import subprocess
    import sys
    import time

    from catalogue import SRC

    env = {**os.environ, "PYTHONPATH": str(SRC)}
    cmd = [sys.executable, "-c", "import time, ava.surveys.build as b; real = b._assemble\n"
           "def slow(*a, **k):\n    time.sleep(60)\n    return real(*a, **k)\n"
           "b._assemble = slow\nfrom ava.cli import app\napp()",
           "data", "build-surveys", "--pew-dir", str(tree / "pew"), "--out", str(tree / "out"), "--workers", "1",
           "--no-progress"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not list((tree / "out" / ".cache").glob("W7-*.pkl")) and time.time() < deadline:
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert read_run(tree / "out").status == RunStatus.RUNNING
    with pytest.raises(SurveyDataError, match="its run record says interrupted: the process that wrote it is gone"):
        load_benchmark("opinionqa", tree / "out")
    result = build(tree)
    assert result.exit_code == 0, result.output
    assert "took over a stale lock (pid" in result.output  # the kernel dropped the dead process's lock
    assert read_run(tree / "out").complete and len(load_benchmark("opinionqa", tree / "out")) == 1


def test_damaged_cache_entry_is_redone(tree: Path):
    assert build(tree).exit_code == 0
    first = (tree / "out" / "opinionqa-xl" / "distributions.parquet").read_bytes()
    (entry,) = (tree / "out" / ".cache").iterdir()
    entry.write_bytes(b"not a pickle")
    result = build(tree)
    assert result.exit_code == 0 and "Traceback" not in result.output
    assert (tree / "out" / "opinionqa-xl" / "distributions.parquet").read_bytes() == first


def test_fixed_input_then_builds(tree: Path):
    sav = tree / "pew" / WAVE
    good = sav.read_bytes()
    sav.write_bytes(good[:700])
    assert build(tree).exit_code == 1
    sav.write_bytes(good)
    result = build(tree)
    assert result.exit_code == 0, result.output
    assert json.loads((tree / "out" / "manifest.json").read_text())["complete"] is True
    assert len(load_benchmark("opinionqa", tree / "out")) == 1


# -- what eval reads: load_benchmark ---------------------------------------------------------------
@pytest.fixture
def incomplete(tree: Path) -> Path:
    sav = tree / "pew" / WAVE
    sav.write_bytes(sav.read_bytes()[:700])
    assert build(tree).exit_code == 1
    return tree / "out"


def test_load_refuses_an_incomplete_build(incomplete: Path):
    record = read_run(incomplete)
    assert record.status == RunStatus.FAILED and record.reason.startswith("incomplete: ")
    assert "ATP W7.sav" in record.reason
    with pytest.raises(SurveyDataError, match=r"incomplete survey build, not usable \(its run record says failed: "
                                              r"incomplete: .*ATP W7.sav.*rerun `ava data"):
        load_benchmark("opinionqa", incomplete)


def test_eval_refuses_an_incomplete_build(incomplete: Path, tmp_path: Path):
    result = CliRunner().invoke(app, ["eval", "--model", "uniform", "--benchmark", "opinionqa", "--data",
                                      str(incomplete), "--out", str(tmp_path / "run"), "--no-progress"])
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert "incomplete survey build" in result.output and str(incomplete) in result.output
    assert "pass --data" not in result.output  # the data is there: it must be rebuilt, not pointed at
    assert not (tmp_path / "run" / "results.json").exists()


def test_load_refuses_a_legacy_build_with_errors(tree: Path):
    """Builder 1 wrote complete: true beside errors (a wave that failed to read)."""
    assert build(tree).exit_code == 0
    path = tree / "out" / "manifest.json"
    manifest = json.loads(path.read_text())
    path.write_text(json.dumps({**manifest, "errors": ["pew/W12/ATP W12.sav: cannot read"]}))
    with pytest.raises(SurveyDataError, match="ATP W12.sav: cannot read"):
        load_benchmark("opinionqa-xl", tree / "out")


def test_load_refuses_empty_groups(tree: Path):
    """A build (e.g. by builder 1) whose demographic mapping failed: every group empty."""
    from dataclasses import replace

    from ava.surveys.store import write_benchmark

    assert build(tree).exit_code == 0
    out = tree / "out"
    questions = load_benchmark("opinionqa-xl", out)
    emptied = [replace(q, groups=(q.groups[0], *(replace(g, distribution=(), n=0, weighted_n=0.0,
                                                         counts=(0,) * len(g.counts)) for g in q.groups[1:])))
               for q in questions]
    write_benchmark(out / "opinionqa-xl", emptied)
    os.utime(out / "manifest.json")  # as a rebuild in place would
    with pytest.raises(SurveyDataError, match=r"1 of 1 questions have no respondent in any demographic group"):
        load_benchmark("opinionqa-xl", out)


def test_load_refuses_a_benchmark_without_questions(tree: Path):
    from ava.surveys.store import write_benchmark

    assert build(tree).exit_code == 0
    write_benchmark(tree / "out" / "opinionqa", [])
    os.utime(tree / "out" / "manifest.json")
    with pytest.raises(SurveyDataError, match="has no questions"):
        load_benchmark("opinionqa", tree / "out")


def test_load_refuses_a_corrupt_manifest(tree: Path):
    assert build(tree).exit_code == 0
    (tree / "out" / "manifest.json").write_bytes(b"\xff\xfe{")
    with pytest.raises(SurveyDataError, match="manifest.json: unreadable"):
        load_benchmark("opinionqa", tree / "out")


def test_load_refuses_a_corrupt_parquet_file(tree: Path):
    assert build(tree).exit_code == 0
    path = tree / "out" / "opinionqa" / "distributions.parquet"
    path.write_bytes(path.read_bytes()[:100])
    os.utime(tree / "out" / "manifest.json")
    with pytest.raises(SurveyDataError, match=r"distributions.parquet: not a readable Parquet table"):
        load_benchmark("opinionqa", tree / "out")


# -- issue 26: an output apart from every input ----------------------------------------------------
@pytest.mark.parametrize("where, relation", [("pew/out", "is inside"), ("pew", "is the same path as"),
                                             (".", "holds")])
def test_out_equal_to_inside_or_holding_the_pew_dir(tree: Path, where: str, relation: str):
    """Before: a build inside --pew-dir would find its own files among the waves on the next run."""
    before = {p: p.stat().st_mtime_ns for p in tree.rglob("*")}
    result = build(tree, out=tree / where)
    refused(result, 2, f"--out {relation} --pew-dir")
    assert len([line for line in result.output.splitlines() if line.startswith("error:")]) == 1
    assert {p: p.stat().st_mtime_ns for p in tree.rglob("*")} == before  # nothing written


def test_out_inside_the_opinionqa_dir(tree: Path):
    result = build(tree, "--opinionqa-dir", str(tree / "opinionqa"), out=tree / "opinionqa" / "out")
    refused(result, 2, "--out is inside --opinionqa-dir")
    assert not (tree / "opinionqa" / "out").exists()
