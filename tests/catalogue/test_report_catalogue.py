"""``ava report``: bad run directories and outputs, one case each (see README.md in this folder)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from ava.contracts.results import ItemScore
from ava.evals.task import GenerationItem, TaskResult
from catalogue import assert_error, invoke


class CannedGeneration:
    """A generation task (like ava-tasks) whose 'model' echoes a canned answer: no weights needed."""

    name, version, template_version, batch_size, reducer = "echo-tasks", "1", None, 2, "mean"

    def items(self) -> list[GenerationItem]:
        return [GenerationItem(f"s{i}", f"Prompt {i}", "G") for i in range(3)]

    def generate(self, model: Any, tokenizer: Any, chunk: Sequence[GenerationItem]) -> list[dict[str, Any]]:
        return [{"id": i.id, "prediction": "yes" if i.id != "s1" else "no"} for i in chunk]

    def score(self, items: Sequence[GenerationItem], outputs: Mapping[str, Mapping[str, Any]]) -> list[ItemScore]:
        return [ItemScore(i.id, i.id, {"right": outputs[i.id]["prediction"] == "yes"}) for i in items]

    def metrics(self, scores: Sequence[ItemScore]) -> TaskResult:
        right = [s.values["right"] for s in scores]
        return TaskResult(headline={"accuracy": 100 * sum(right) / len(right)}, units=len(scores), unit="items")


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    """A letter-task run (uniform on fixture survey questions) and a generation-task run."""
    from ava.evals.runner import run_tasks
    from ava.evals.tasks.opinion_task import OpinionTask
    from ava.models import load_scorer
    from test_opinionqa import fixtures

    root = tmp_path_factory.mktemp("runs")
    run_tasks([OpinionTask("opinionqa", fixtures(), n_resamples=5)], load_scorer("uniform"), root / "letters",
              progress=False)
    run_tasks([CannedGeneration()], load_scorer("uniform"), root / "generated", progress=False,
              generation_model=lambda: (None, None))
    return root


def report(*dirs: Path, out: Path):
    return invoke("report", *map(str, dirs), "--out", str(out))


def copy_run(runs: Path, tmp_path: Path, name: str = "letters") -> Path:
    return Path(shutil.copytree(runs / name, tmp_path / name))


def test_a_generation_task_run_is_reported_like_any_other(runs, tmp_path):
    result = report(runs / "letters", runs / "generated", out=tmp_path / "r.html")
    assert result.exit_code == 0, result.output
    page = (tmp_path / "r.html").read_text()
    assert "echo-tasks" in page and "66.667" in page and "representativeness" in page


def test_binary_results_file(runs, tmp_path):
    run = copy_run(runs, tmp_path)
    (run / "results.json").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe")
    assert_error(report(run, out=tmp_path / "r.html"), f"{run / 'results.json'}: not UTF-8 text")
    assert not (tmp_path / "r.html").exists()


@pytest.mark.parametrize(("content", "needle"), [
    ("[1, 2, 3]", "a JSON list, not a results object"),
    ('"results"', "a JSON str, not a results object"),
    ('{"schema_version": "2.0", "tasks": [1]}', '"tasks" must map each task name to an object'),
    ('{"schema_version": "2.0", "tasks": {"t": {"headline": [0.5]}}}', "task 't': 'headline' must be an object"),
    ('{"schema_version": "2.0", "run": 3, "tasks": {}}', '"run" must be an object'),
    ('{"schema_version": "2.0", "tasks": {"t": {"intervals": {"x": 1}}}}', "each interval must be an object"),
    ('{"schema_version": "1.0", "tasks": {}}', "results schema '1.0', this ava reads 2.0"),
    ('{"tasks": {}', "results.json:1: not JSON"),
])
def test_malformed_results_file(runs, tmp_path, content, needle):
    run = copy_run(runs, tmp_path)
    (run / "results.json").write_text(content)
    assert_error(report(run, out=tmp_path / "r.html"), needle, str(run))


def test_an_old_ava_tasks_folder_is_refused_with_what_it_is(tmp_path):
    old = tmp_path / "ava-tasks-old"
    old.mkdir()
    (old / "results.json").write_text(json.dumps({"benchmark": "ava-tasks", "results": {}}))
    (old / "run_config.json").write_text("{}")
    assert_error(report(old, out=tmp_path / "r.html"), f"{old}: no run.json", "ava eval --out")


def test_unfinished_run_is_refused_with_its_reason(runs, tmp_path):
    run = copy_run(runs, tmp_path)
    record = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps({**record, "status": "failed", "reason": "ValueError: no pairs"}))
    assert_error(report(run, out=tmp_path / "r.html"), "the run is failed (ValueError: no pairs), not complete")


def test_unreadable_run_record(runs, tmp_path):
    run = copy_run(runs, tmp_path)
    (run / "run.json").write_bytes(b"\xff\xfe{")
    assert_error(report(run, out=tmp_path / "r.html"), f"{run / 'run.json'}: not UTF-8 text")


def test_a_complete_run_without_its_results(runs, tmp_path):
    run = copy_run(runs, tmp_path)
    (run / "results.json").unlink()
    assert_error(report(run, out=tmp_path / "r.html"), "missing, although the run says complete")


def test_missing_run_directory(tmp_path):
    assert_error(report(tmp_path / "nowhere", out=tmp_path / "r.html"), "no such run directory")


def test_report_output_that_is_a_folder_or_under_a_file(runs, tmp_path):
    (tmp_path / "taken").write_text("x")
    (tmp_path / "dir").mkdir()
    assert_error(report(runs / "letters", out=tmp_path / "dir"), f"{tmp_path / 'dir'} is a folder")
    assert_error(report(runs / "letters", out=tmp_path / "taken" / "r.html"),
                 f"{tmp_path / 'taken'} is a file, so nothing can be created under it")


HOLD_LOCK = """
import sys, time
from pathlib import Path
from ava.runs import OutputLock
with OutputLock(Path(sys.argv[1]) / ".lock", Path(sys.argv[1])):
    print("locked", flush=True)
    time.sleep(60)
"""


def test_a_killed_run_is_reported_as_interrupted_not_running(runs, tmp_path):
    """A run whose writer was killed with SIGKILL (no chance to finish its record) says running in
    run.json; the report says it is interrupted because its process is gone, and while a live
    process holds it, who is writing it."""
    import os
    import signal
    import subprocess
    import sys

    from catalogue import SRC

    run = copy_run(runs, tmp_path)
    record = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps({**record, "status": "running"}))
    writer = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(run)], stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": str(SRC)})
    try:
        assert writer.stdout.readline().strip() == "locked"
        assert_error(report(run, out=tmp_path / "r.html"), f"{run}: the run is running (being written by pid "
                     f"{writer.pid} on ")
        writer.send_signal(signal.SIGKILL)
        writer.wait()
    finally:
        writer.kill()
    line = assert_error(report(run, out=tmp_path / "r.html"),
                        f"{run}: the run is interrupted (the process that wrote it is gone: pid {writer.pid} on ",
                        "rerun its `ava eval` command")
    assert "is running" not in line and not (tmp_path / "r.html").exists()


def test_a_run_whose_record_could_not_be_finished_on_a_full_disk(runs, tmp_path):
    """The disk filled while the run wrote its last status: run.json still says running, the lock
    says why; the report says failed with the reason."""
    from ava.runs import OutputLock

    run = copy_run(runs, tmp_path)
    record = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps({**record, "status": "running"}))
    with OutputLock(run / ".lock", run) as lock:
        lock.note_end("failed", f"the work finished but its run record could not be written (No space left on "
                                f"device: {run / 'run.json'})")
    assert_error(report(run, out=tmp_path / "r.html"), f"{run}: the run is failed (the work finished but its run "
                 "record could not be written (No space left on device", "not complete")



def test_report_out_on_a_full_disk(runs, tmp_path, monkeypatch):
    import errno
    import os

    def fsync(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", fsync)
    out = tmp_path / "r.html"
    assert_error(report(runs / "letters", out=out), f"{out}: no space left on device; free space on that device")
    assert not out.exists() and not list(tmp_path.glob(".*.tmp"))


def test_report_out_through_a_symlink_loop(runs, tmp_path):
    import os

    os.symlink(tmp_path / "loop", tmp_path / "loop")
    out = tmp_path / "loop" / "r.html"
    assert_error(report(runs / "letters", out=out), f"{out}: a symbolic link on this path points (directly or not) "
                 "back to itself; fix or remove it, or choose another --out")


def test_results_file_without_read_permission(runs, tmp_path):
    from catalogue import run_unprivileged

    run = copy_run(runs, tmp_path)
    (run / "results.json").chmod(0o000)
    out = tmp_path / "r.html"
    done = run_unprivileged(["report", str(run), "--out", str(out)], cwd=tmp_path)
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert done.returncode == 2 and "Traceback" not in done.stderr + done.stdout, done.stderr
    assert errors == [f"error: {run / 'results.json'}: permission denied; make it readable/writable for you (chmod, "
                      "or ask its owner), or choose another path"], done.stderr
    assert not out.exists()


@pytest.mark.parametrize("spelling", ["same", "link"])
def test_a_run_directory_given_twice_is_refused(runs, tmp_path, spelling):
    """A sibling of ``--benchmark X --benchmark X``: the run would be a column of the report twice."""
    import os

    second = runs / "letters"
    if spelling == "link":
        second = tmp_path / "link"
        os.symlink(runs / "letters", second)
    out = tmp_path / "r.html"
    assert_error(invoke("report", str(runs / "letters"), str(second), "--out", str(out)),
                 f"{second}: run directory given twice", "give each run directory once")
    assert not out.exists()
