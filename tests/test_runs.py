"""ava.runs: the run record, binding, one writer per output, preflight, chunk -> append -> resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ava.runs import (
    Binding,
    BindingMismatch,
    ChunkPolicy,
    JsonlLog,
    NotWritable,
    Output,
    OutputBusy,
    OutputLock,
    RunStatus,
    check_writable,
    is_complete,
    read_run,
    run_in_chunks,
    start_run,
)

SRC = Path(__file__).resolve().parents[1] / "src"


def test_binding_differences_name_what_differs():
    a = Binding("m1", "h1", {"chat": False, "dtype": "float32"})
    assert a.differences(Binding("m1", "h1", {"chat": False, "dtype": "float32"})) == []
    assert a.differences(Binding("m2", "h2", {"chat": True})) == [
        "model: m1 -> m2", "inputs: hash h1 -> h2", "option chat: False -> True", "option dtype: 'float32' -> None"]


def test_run_record_lifecycle_and_one_reader(tmp_path):
    out = Output(tmp_path / "run", folder=True)
    assert read_run(out.path) is None and not is_complete(out.path)
    with start_run(out, "eval", Binding("m"), info={"tasks": ["t"]}) as run:
        assert read_run(out.path).status == RunStatus.RUNNING and run.previous is None
    record = read_run(out.path)
    assert record.complete and record.info == {"tasks": ["t"]} and is_complete(out.path)
    with pytest.raises(RuntimeError), start_run(out, "eval", Binding("m")) as run:
        assert run.previous.complete
        raise RuntimeError("boom")
    assert read_run(out.path).status == RunStatus.FAILED and read_run(out.path).reason == "RuntimeError: boom"
    with pytest.raises(BindingMismatch, match=r"model: m -> n"), start_run(out, "eval", Binding("n")):
        pass
    (out.path / "run.json").write_text("not json")
    assert not is_complete(out.path)


def test_file_outputs_keep_their_record_and_lock_beside_them(tmp_path):
    out = Output(tmp_path / "scores.jsonl", folder=False)
    assert out.record == tmp_path / "scores.jsonl.run.json" and out.lock == tmp_path / "scores.jsonl.lock"
    with start_run(out, "score", Binding("m", "h"), owned=("", ".partial")):
        assert out.lock.exists()
        out.path.write_text("x\n")
    assert not out.lock.exists() and is_complete(out.path) and read_run(out.record).kind == "score"
    with start_run(out, "score", Binding("m", "h2"), owned=("", ".partial"), restart=True):
        assert not out.path.exists()  # restart removed the old output


def test_preflight(tmp_path):
    (tmp_path / "f").write_text("x")
    check_writable(Output(tmp_path / "new" / "deeper", folder=True))
    with pytest.raises(NotWritable, match="is a file; --out needs a folder"):
        check_writable(Output(tmp_path / "f", folder=True))
    with pytest.raises(NotWritable, match="is a file, so nothing can be created under it"):
        check_writable(Output(tmp_path / "f" / "g" / "h", folder=False))
    with pytest.raises(NotWritable, match="is a folder; --out needs a file"):
        check_writable(Output(tmp_path, folder=False))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f"]  # the probe leaves nothing behind


HOLDER = """
import sys, time
from pathlib import Path
from ava.runs import OutputLock
with OutputLock(Path(sys.argv[1]), Path(sys.argv[1]).parent):
    print("locked", flush=True)
    time.sleep(60)
"""


def test_lock_refuses_a_live_holder_and_takes_over_after_it_is_killed(tmp_path):
    lock = tmp_path / ".lock"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(lock)], stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": str(SRC)})
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(OutputBusy, match=f"another process \\(pid {holder.pid} on "), OutputLock(lock, tmp_path):
            pass
        holder.send_signal(signal.SIGKILL)  # kill -9: the lock file stays, naming a dead pid
        holder.wait()
        assert json.loads(lock.read_text())["pid"] == holder.pid
        with OutputLock(lock, tmp_path) as taken:
            assert taken.stale_holder.startswith(f"pid {holder.pid} on ")
            assert json.loads(lock.read_text())["pid"] == os.getpid()
        assert not lock.exists()
    finally:
        holder.kill()


def test_jsonl_log_cuts_a_torn_line_and_counts_unreadable_ones(tmp_path):
    path = tmp_path / "log.jsonl"
    path.write_text('{"id": "a", "v": 1}\nnot json\n{"id": "b", "v": 2}\n{"id": "c", "v"')
    log = JsonlLog(path, key="id")
    assert set(log.load()) == {"a", "b"} and log.unreadable == 2
    assert path.read_text().endswith('{"id": "b", "v": 2}\n')  # the next append starts on a fresh line
    run_in_chunks(["c", "d"], lambda part: [{"id": x, "v": 3} for x in part], log, progress=False)
    assert set(JsonlLog(path, key="id").load()) == {"a", "b", "c", "d"}


def test_chunks_grow_while_fast_and_never_cross_a_boundary(tmp_path):
    sizes: list[list[str]] = []

    def work(part):
        sizes.append(list(part))
        return [{"id": x} for x in part]

    items = [f"a{i}" for i in range(9)] + [f"b{i}" for i in range(3)]
    run_in_chunks(items, work, JsonlLog(tmp_path / "l.jsonl", "id"), policy=ChunkPolicy(2, 4, seconds=60),
                  boundary=lambda x: x[0], progress=False)
    assert [len(s) for s in sizes] == [2, 4, 3, 3] and all(len({x[0] for x in s}) == 1 for s in sizes)

    def slow(part):
        time.sleep(0.02)
        return work(part)

    sizes.clear()
    run_in_chunks(items, slow, JsonlLog(tmp_path / "m.jsonl", "id"), policy=ChunkPolicy(2, 8, seconds=0.01),
                  progress=False)
    assert {len(s) for s in sizes} == {2}  # a slow chunk does not grow


WRITER = """
import sys, time
from pathlib import Path
from ava.runs import Binding, Output, start_run
with start_run(Output(Path(sys.argv[1]), folder=True), "eval", Binding("m")):
    print("running", flush=True)
    time.sleep(60)
"""


def test_a_run_killed_by_sigkill_reads_as_interrupted_not_running(tmp_path):
    """kill -9 leaves run.json at running and the lock naming a dead pid: every reader that asks
    whether the output is finished says interrupted, the process is gone; while it lived, running."""
    from ava.runs import incomplete_reason, read_run_state

    out = tmp_path / "run"
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(out)], stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": str(SRC)})
    try:
        assert writer.stdout.readline().strip() == "running"
        live = read_run_state(out)
        assert live.status == RunStatus.RUNNING and live.reason.startswith(f"being written by pid {writer.pid} on ")
        assert incomplete_reason(out) == f"its run record says running: {live.reason}"
        writer.send_signal(signal.SIGKILL)
        writer.wait()
    finally:
        writer.kill()
    assert read_run(out).status == RunStatus.RUNNING  # the file as written: what a rerun resumes from
    dead = read_run_state(out)
    assert dead.status == RunStatus.INTERRUPTED and f"pid {writer.pid} on " in dead.reason
    assert incomplete_reason(out).startswith("its run record says interrupted: the process that wrote it is gone")
    assert not is_complete(out)
    (out / ".lock").unlink()  # no lock at all (released without finishing the record): gone too
    assert "left no lock" in read_run_state(out).reason
    with start_run(Output(out, folder=True), "eval", Binding("m")) as run:  # the rerun resumes as before
        assert run.previous.status == RunStatus.RUNNING
    assert is_complete(out)


def _full_disk_for_records(monkeypatch, statuses: tuple[str, ...]) -> None:
    """Writing a run record whose status is one of ``statuses`` fails with ENOSPC."""
    import errno

    import ava.runs.record as record_module

    real = record_module.write_json

    def write_json(path, obj, *args, **kwargs):
        if obj.get("status") in statuses:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return real(path, obj, *args, **kwargs)

    monkeypatch.setattr(record_module, "write_json", write_json)


def test_a_record_that_cannot_be_finished_on_a_full_disk_reads_as_failed_with_why(tmp_path, monkeypatch):
    from ava.runs import incomplete_reason, read_run_state

    out = Output(tmp_path / "run", folder=True)
    _full_disk_for_records(monkeypatch, ("complete", "failed"))
    with pytest.raises(OSError, match="No space left on device"), start_run(out, "eval", Binding("m")):
        pass  # the work finished; only its last status cannot be written
    assert read_run(out.path).status == RunStatus.RUNNING
    state = read_run_state(out.path)
    assert state.status == RunStatus.FAILED and state.reason.startswith("the work finished but its run record could")
    assert "No space left on device" in state.reason and str(out.record) in state.reason
    assert "No space left on device" in incomplete_reason(out.path) and not is_complete(out.path)
    # the work itself hit the full disk, and so did the failed record: the first error is kept
    with pytest.raises(OSError), start_run(out, "eval", Binding("m")):
        raise OSError(28, "No space left on device", str(out.path / "scores.jsonl"))
    state = read_run_state(out.path)
    assert state.status == RunStatus.FAILED and state.reason.startswith("OSError: [Errno 28] No space left")
    assert "scores.jsonl" in state.reason and "then its run record could not be written" in state.reason
    monkeypatch.undo()
    with start_run(out, "eval", Binding("m")):  # space again: the rerun takes the lock over and finishes
        pass
    assert is_complete(out.path) and not out.lock.exists()
