"""``ava export lm-eval``: bad input and faults, one case each (see README.md in this folder)."""

from __future__ import annotations

import json

from catalogue import assert_error, invoke


def export(out, *extra):
    return invoke("export", "lm-eval", str(out), "--benchmark", "globalopinionqa", "--limit", "1", *extra)


def test_export_writes_tasks_utils_readme_and_a_complete_record(tmp_path):
    result = export(tmp_path / "tasks", "--set", f"data_root={tmp_path}")
    assert result.exit_code == 0, result.output
    assert "ava_globalopinionqa: 2 prompts; metrics avg_sim, skew" in result.output
    names = {p.name for p in (tmp_path / "tasks").iterdir()} - {".lock"}
    assert names == {"README.md", "ava_globalopinionqa.yaml", "run.json", "utils.py"}
    record = json.loads((tmp_path / "tasks" / "run.json").read_text())
    assert record["kind"] == "lm-eval-export" and record["status"] == "complete"


def test_the_same_command_rewrites_and_other_options_are_refused(tmp_path):
    out = tmp_path / "tasks"
    assert export(out, "--set", f"data_root={tmp_path}").exit_code == 0
    assert export(out, "--set", f"data_root={tmp_path}").exit_code == 0
    assert_error(export(out, "--set", f"data_root={tmp_path}", "--seed", "1"),
                 f"{out} was produced with other settings", "option seed: 0 -> 1", "--restart")
    again = export(out, "--set", f"data_root={tmp_path}", "--seed", "1", "--restart")
    assert again.exit_code == 0, again.output


def test_out_is_a_file(tmp_path):
    (tmp_path / "taken").write_text("x")
    assert_error(export(tmp_path / "taken"), f"{tmp_path / 'taken'} is a file")


def test_folder_with_foreign_files_and_no_record_is_refused(tmp_path):
    (tmp_path / "utils.py").write_text("# someone else's\n")
    assert_error(export(tmp_path), "holds utils.py but no run record")
    assert (tmp_path / "utils.py").read_text() == "# someone else's\n"


def test_data_with_several_benchmarks_is_refused(tmp_path):
    assert_error(invoke("export", "lm-eval", str(tmp_path / "o"), "--data", str(tmp_path)),
                 "--data names one benchmark's data: give exactly one --benchmark")
    assert not (tmp_path / "o").exists()


def test_a_generation_benchmark_cannot_be_exported(tmp_path):
    assert_error(invoke("export", "lm-eval", str(tmp_path / "o"), "--benchmark", "ava-tasks"),
                 "ava-tasks generates text; only letter-scored benchmarks can be exported")


def test_unknown_benchmark_and_setting_are_refused(tmp_path):
    assert_error(invoke("export", "lm-eval", str(tmp_path / "o"), "--benchmark", "opinonqa"),
                 "unknown benchmark 'opinonqa'", "did you mean opinionqa")
    assert_error(export(tmp_path / "o", "--set", "n_resamples=5"), "unknown setting 'n_resamples'")


def test_a_named_benchmark_without_data_says_how_to_get_it(tmp_path):
    assert_error(invoke("export", "lm-eval", str(tmp_path / "o"), "--benchmark", "culturenli", "--set",
                        f"data_root={tmp_path}"), "data not found at", "not bundled", "CulturallyAwareNLI")
    assert not (tmp_path / "o").exists()


def test_a_full_disk_while_writing_the_tasks(tmp_path, monkeypatch):
    """No space left while the task files are written: one line naming the file, what to do; the
    record does not say complete."""
    import errno
    import os

    from ava.runs import is_complete

    def fsync(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", fsync)
    out = tmp_path / "tasks"
    line = assert_error(export(out, "--set", f"data_root={tmp_path}"), f"{out}", "no space left on device; free space")
    assert "[Errno" not in line
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert not is_complete(out)
