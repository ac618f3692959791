"""Bad-input and fault catalogue of ``ava train``.

One test per case. Each asserts what a user meets: the exit code (2: refused before any model
loads, 1: training ran and stopped), one ``error:`` line naming the file, line or key and the
reason, no traceback, and nothing that looks like a finished model (no ``training_card.json``, no
``adapter/``). Refusals that need no model are checked to happen before one loads: the model
loader is replaced by one that fails the test. The data is a small build in ``ava build``'s
layout (``test_training.write_instruction_fixture``) and the model is ``tiny``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ava.runs import RunStatus, read_run
from catalogue import SRC, assert_error, forbid_model_loading, invoke, run_unprivileged
from test_training import write_instruction_fixture

GOOD_CHAT = '{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}\n'


@pytest.fixture(autouse=True)
def datasets_cache(tmp_path, monkeypatch):
    import datasets

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "hf-datasets"))


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return write_instruction_fixture(tmp_path / "build", n_train=4)


@pytest.fixture
def no_model(monkeypatch):
    """Fail the test if anything loads model weights (the refusal must come first)."""
    forbid_model_loading(monkeypatch)


def train(data: Path, out: Path, *args: str):
    return invoke("train", "--data", str(data), "--model", "tiny", "--out", str(out), *args)


def refused(result, code: int, *needles: str) -> str:
    return assert_error(result, *needles, code=code)


def nothing_finished(out: Path) -> None:
    assert not (out / "training_card.json").exists()
    assert not (out / "adapter").exists() and not (out / "model").exists()


QUICK = ("--max-steps", "1", "--batch-size", "4", "--sft-arg", "save_strategy=no")


# --- settings -------------------------------------------------------------------------------------

def test_sft_arg_is_not_overwritten_by_flag_defaults(data, tmp_path):
    out = tmp_path / "o"
    result = train(data, out, "--sft-arg", "learning_rate=0.003", "--sft-arg", "max_steps=1",
                   "--batch-size", "4", "--sft-arg", "save_strategy=no")
    assert result.exit_code == 0, result.output
    assert "learning_rate=0.003 (--sft-arg)" in result.output and "max_steps=1 (--sft-arg)" in result.output
    card = json.loads((out / "training_card.json").read_text())
    assert card["hyperparameters"]["sft"]["learning_rate"] == 0.003
    assert card["hyperparameters"]["sources"]["learning_rate"] == "--sft-arg"
    assert card["result"]["global_step"] == 1  # max_steps=1 took effect
    record = read_run(out)
    assert record.complete and record.binding.options["sft"]["learning_rate"] == 0.003
    assert record.info["config"]["sources"]["learning_rate"] == "--sft-arg"


@pytest.mark.parametrize(
    "key,value",
    [("max_steps", 7), ("num_train_epochs", 2.0), ("per_device_train_batch_size", 3), ("max_length", 200),
     ("save_steps", 50.0), ("learning_rate", 0.5)],
)
def test_each_flagged_field_can_come_from_sft_arg(key, value, tmp_path):
    from ava.training.config import load_config

    cfg = load_config("tiny", tmp_path, tmp_path / "o", sft_overrides=dict.fromkeys(
        ("max_steps", "num_train_epochs", "learning_rate", "per_device_train_batch_size", "max_length",
         "save_steps", "report_to")), sft_args=[f"{key}={value}"])
    assert cfg.sft[key] == value and cfg.sources[key] == "--sft-arg"


def test_flag_and_sft_arg_for_one_field(data, tmp_path, no_model):
    result = train(data, tmp_path / "o", "--lr", "0.1", "--sft-arg", "learning_rate=0.2")
    refused(result, 2, "--sft-arg learning_rate=0.2", "--lr 0.1", "pass only one")
    assert not (tmp_path / "o").exists()


def test_unknown_sft_arg_names_key_and_close_matches(data, tmp_path, no_model):
    result = train(data, tmp_path / "o", "--sft-arg", "learnig_rate=0.1")
    refused(result, 2, "--sft-arg learnig_rate", "not a trl.SFTConfig field", "did you mean learning_rate")


def test_sft_arg_of_wrong_type(data, tmp_path, no_model):
    refused(train(data, tmp_path / "o", "--sft-arg", "learning_rate=fast"), 2, "learning_rate='fast'",
            "expected float")


def test_sft_arg_without_value(data, tmp_path, no_model):
    refused(train(data, tmp_path / "o", "--sft-arg", "learning_rate"), 2, "expected key=value")


def test_sft_arg_that_ava_manages(data, tmp_path, no_model):
    refused(train(data, tmp_path / "o", "--sft-arg", "output_dir=/tmp/x"), 2, "output_dir", "pass --out")
    refused(train(data, tmp_path / "o", "--sft-arg", "logging_nan_inf_filter=true"), 2, "NaN")


def test_invalid_sft_value_that_sftconfig_rejects(data, tmp_path, no_model):
    refused(train(data, tmp_path / "o", "--sft-arg", "lr_scheduler_type=zigzag"), 2, "invalid training settings")


def test_recipe_file_with_unknown_key(data, tmp_path, no_model):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("sft:\n  learning_rate: 1.0e-4\n  warmup_ratioo: 0.1\n", encoding="utf-8")
    refused(train(data, tmp_path / "o", "--config", str(recipe)), 2, f"{recipe}: sft.warmup_ratioo",
            "did you mean")
    recipe.write_text("sftt:\n  learning_rate: 1.0e-4\n", encoding="utf-8")
    refused(train(data, tmp_path / "o", "--config", str(recipe)), 2, f"{recipe}: unknown key 'sftt'")
    recipe.write_text("lora:\n  rank: 8\n", encoding="utf-8")
    refused(train(data, tmp_path / "o", "--config", str(recipe)), 2, "lora.rank", "peft.LoraConfig")


def test_recipe_file_not_yaml_or_not_utf8(data, tmp_path, no_model):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("sft: [unclosed\n", encoding="utf-8")
    refused(train(data, tmp_path / "o", "--config", str(recipe)), 2, f"{recipe}:", "not valid YAML")
    recipe.write_bytes(b"sft:\n  run_name: caf\xe9\n")
    refused(train(data, tmp_path / "o", "--config", str(recipe)), 2, f"{recipe}: not UTF-8")


def test_unknown_report_target(data, tmp_path, no_model):
    refused(train(data, tmp_path / "o", "--report-to", "mlflow"), 2, "report_to='mlflow'", "tensorboard, wandb")


def test_report_to_a_logger_that_is_not_installed(data, tmp_path, no_model):
    import importlib.util

    if importlib.util.find_spec("wandb"):
        pytest.skip("wandb is installed here")
    refused(train(data, tmp_path / "o", "--report-to", "wandb"), 2, "needs the wandb package",
            "pip install 'align-via-actions[wandb]'")


def test_mix_ratio_without_mix(data, tmp_path, no_model):
    refused(train(data, tmp_path / "o", "--mix-ratio", "0.2"), 2, "--mix-ratio needs --mix")


def test_mix_ratio_out_of_range(data, tmp_path, no_model):
    mix = tmp_path / "chat.jsonl"
    mix.write_text(GOOD_CHAT, encoding="utf-8")
    refused(train(data, tmp_path / "o", "--mix", str(mix), "--mix-ratio", "1.0"), 2, "[0, 1)")


def test_uniform_has_nothing_to_train(data, tmp_path, no_model):
    result = invoke("train", "--data", str(data), "--model", "uniform", "--out", str(tmp_path / "o"))
    refused(result, 2, "'uniform' baseline has no weights")


def test_model_options_are_checked_before_anything(data, tmp_path, no_model):
    refused(train(data, tmp_path / "o", "--revision", "main"), 2, "--revision picks a commit, branch or tag",
            "'tiny' is built in")
    refused(train(data, tmp_path / "o", "--dtype", "fp8"), 2, "unknown --dtype 'fp8'", "auto, bf16, fp16, fp32")
    refused(train(data, tmp_path / "o", "--device-map", "everywhere"), 2, "unknown --device-map 'everywhere'")
    assert not (tmp_path / "o").exists()


# --- data -----------------------------------------------------------------------------------------

def test_data_folder_missing(tmp_path, no_model):
    refused(train(tmp_path / "nowhere", tmp_path / "o"), 2, "nowhere: no such folder")
    assert not (tmp_path / "o").exists()  # refused before the output folder is made


def test_data_folder_is_not_a_finished_build(data, tmp_path, no_model):
    (data / "run.json").unlink()
    refused(train(data, tmp_path / "o"), 2, f"{data}: not a finished instruction build (no run record (run.json))",
            "ava data build-ads --out")


def test_data_build_interrupted_or_of_another_kind(data, tmp_path, no_model):
    record = json.loads((data / "run.json").read_text())
    (data / "run.json").write_text(json.dumps({**record, "status": "interrupted", "reason": "killed"}))
    refused(train(data, tmp_path / "o"), 2, "not a finished instruction build (its run record says interrupted: "
            "killed)")
    (data / "run.json").write_text(json.dumps({**record, "kind": "surveys"}))
    refused(train(data, tmp_path / "o"), 2, "its run record is of a surveys output, not instructions")


def test_data_build_complete_but_manifest_missing(data, tmp_path, no_model):
    (data / "manifest.json").unlink()
    refused(train(data, tmp_path / "o"), 2, "manifest.json: not found, though the build's run record says complete",
            "--restart")


def test_data_folder_without_parquet(tmp_path, no_model):
    from ava.runs import Binding, Output, start_run

    with start_run(Output(tmp_path / "b", folder=True), "instructions", Binding()):
        (tmp_path / "b" / "manifest.json").write_text("{}", encoding="utf-8")
    refused(train(tmp_path / "b", tmp_path / "o"), 2, "no train-*.parquet files")


def test_manifest_not_json_or_not_utf8(data, tmp_path, no_model):
    (data / "manifest.json").write_text('{"totals": ', encoding="utf-8")
    refused(train(data, tmp_path / "o"), 2, "manifest.json:1: not JSON")
    (data / "manifest.json").write_bytes(b'{"x": "\xff"}')
    refused(train(data, tmp_path / "o"), 2, "manifest.json: not UTF-8")


def test_part_that_is_not_parquet(data, tmp_path, no_model):
    part = data / "data" / "train-00001-of-00002.parquet"
    part.write_bytes(b"this is not parquet")
    refused(train(data, tmp_path / "o"), 2, str(part), "not a readable Parquet file")


def test_part_missing_after_the_build_finished(data, tmp_path, no_model):
    (data / "data" / "train-00001-of-00002.parquet").unlink()
    refused(train(data, tmp_path / "o"), 2, "says 16 train samples but the Parquet parts hold 8")


def test_column_missing_or_not_text(data, tmp_path, no_model):
    part = data / "data" / "train-00000-of-00002.parquet"
    table = pq.read_table(part)
    pq.write_table(table.drop_columns(["response"]), part)
    refused(train(data, tmp_path / "o"), 2, str(part), "missing column(s) response")
    pq.write_table(table.set_column(table.schema.get_field_index("prompt"), "prompt",
                                    pa.array(range(len(table)), pa.int64())), part)
    refused(train(data, tmp_path / "o"), 2, str(part), "column 'prompt' holds int64, not text")


def test_null_prompt_names_file_and_row(data, tmp_path, no_model):
    part = data / "data" / "train-00001-of-00002.parquet"
    table = pq.read_table(part)
    prompts = table.column("prompt").to_pylist()
    prompts[3] = None
    pq.write_table(table.set_column(table.schema.get_field_index("prompt"), "prompt", pa.array(prompts)), part)
    refused(train(data, tmp_path / "o"), 2, f"{part}: row 3: prompt is null")


def test_empty_train_split(tmp_path, no_model):
    data = write_instruction_fixture(tmp_path / "b", n_train=0)
    refused(train(data, tmp_path / "o"), 2, "train split has no samples")


def test_max_length_smaller_than_pairs_keeps_and_counts_every_pair(tmp_path):
    """Was: --max-length 128 dropped 12 of 16 pairs (no response token left) and the card said 16."""
    data = write_instruction_fixture(tmp_path / "b", n_train=4, body_words=60)
    out = tmp_path / "o"
    result = train(data, out, "--max-length", "64", *QUICK)
    assert result.exit_code == 0, result.output
    card = json.loads((out / "training_card.json").read_text())
    rule = card["data"]["length_rule"]
    assert card["data"]["n_samples"] == 16 and rule["n_rows"] == 16 and rule["max_length_seen"] == 64
    assert rule["n_prompt_truncated"] == 16 and rule["prompt_tokens_removed"] > 0
    assert "16 instruction pairs" in result.output and "16 prompt(s) cut in the middle" in result.output
    assert "0 dropped" in result.output


# --- mix file -------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "line,reason",
    [
        ('{"messages": [{"role": "wizard", "content": "hi"}, {"role": "assistant", "content": "x"}]}',
         "messages[0]: role 'wizard' is not one of system, user, assistant"),
        ('{"messages": [{"role": "user", "content": 42}, {"role": "assistant", "content": "x"}]}',
         "messages[0]: content must be a string, got int"),
        ('{"messages": [{"role": "user", "content": ["a"]}, {"role": "assistant", "content": "x"}]}',
         "messages[0]: content must be a string, got list"),
        ('{"prompt": "2+2?", "completion": 4}', '"completion" must be a string, got int'),
        ('{"messages": "hello"}', '"messages" must be a list'),
        ('["user", "assistant"]', "expected a JSON object, got list"),
        ('{"text": "hello"}', 'needs "messages" or "prompt" and "completion" (keys found: text)'),
        ('{"messages": [{"role": "user", "content": "no answer"}]}',
         "a conversation needs at least two turns and must end with the assistant's"),
    ],
    ids=["role-wizard", "content-int", "content-list", "completion-int", "messages-str", "not-object", "no-keys",
         "no-answer"],
)
def test_bad_mix_line_names_file_line_and_reason(data, tmp_path, no_model, line, reason):
    mix = tmp_path / "chat.jsonl"
    mix.write_text(GOOD_CHAT + line + "\n" + GOOD_CHAT, encoding="utf-8")
    refused(train(data, tmp_path / "o", "--mix", str(mix)), 2, f"{mix}:2: {reason}")


def test_mix_file_that_is_not_jsonl(data, tmp_path, no_model):
    mix = tmp_path / "chat.json"
    mix.write_text(json.dumps([json.loads(GOOD_CHAT)], indent=2), encoding="utf-8")
    line = refused(train(data, tmp_path / "o", "--mix", str(mix)), 2, f"{mix}:1: not a JSON line")
    assert "more bad line(s)" in line


def test_mix_file_not_utf8(data, tmp_path, no_model):
    mix = tmp_path / "chat.jsonl"
    mix.write_bytes(GOOD_CHAT.encode() + b'{"prompt": "caf\xe9", "completion": "x"}\n')
    refused(train(data, tmp_path / "o", "--mix", str(mix)), 2, f"{mix}:2: not UTF-8")


def test_mix_file_empty(data, tmp_path, no_model):
    mix = tmp_path / "chat.jsonl"
    mix.write_text("\n\n", encoding="utf-8")
    refused(train(data, tmp_path / "o", "--mix", str(mix)), 2, f"{mix}: no conversations")


# --- output folder --------------------------------------------------------------------------------

def test_out_is_a_file(data, tmp_path, no_model):
    out = tmp_path / "o"
    out.write_text("x")
    refused(train(data, out), 2, f"{out} is a file; --out needs a folder here")


def test_out_under_a_file(data, tmp_path, no_model):
    (tmp_path / "f").write_text("x")
    refused(train(data, tmp_path / "f" / "o"), 2, f"{tmp_path / 'f'} is a file, so nothing can be created under it")


def test_out_not_writable(data, tmp_path):
    (tmp_path / "ro").mkdir(mode=0o555)
    out = tmp_path / "ro" / "o"
    proc = run_unprivileged(["train", "--data", str(data), "--model", "tiny", "--out", str(out)], tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert f"error: {out}: cannot write in {tmp_path / 'ro'} (Permission denied)" in proc.stderr


def test_out_holds_other_files_they_are_left_alone(data, tmp_path):
    """Was: refused. Now as every output: only what ava train writes there is its business."""
    out = tmp_path / "o"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    assert train(data, out, *QUICK).exit_code == 0
    assert (out / "notes.txt").read_text() == "mine" and read_run(out).complete
    assert train(data, out, *QUICK, "--restart").exit_code == 0
    assert (out / "notes.txt").read_text() == "mine"


def test_out_holds_a_run_of_an_older_ava(data, tmp_path, no_model):
    out = tmp_path / "o"
    out.mkdir()
    (out / "training_card.json").write_text("{}")
    refused(train(data, out), 2, f"{out} holds training_card.json but no run record", "--restart")


def test_out_held_by_another_run(data, tmp_path, no_model):
    from ava.runs import OutputLock

    out = tmp_path / "o"
    out.mkdir()
    with OutputLock(out / ".lock", out):
        refused(train(data, out), 2, f"{out} is being written by another process (pid {os.getpid()}")


def test_rerun_resumes_refuses_other_settings_and_restarts(data, tmp_path):
    out = tmp_path / "o"
    assert train(data, out, *QUICK).exit_code == 0
    card = (out / "training_card.json").read_text()
    again = train(data, out, *QUICK, "--resume")  # --resume: a hidden no-op, resuming is the default
    assert again.exit_code == 0 and "already trained with these settings" in again.output
    assert (out / "training_card.json").read_text() == card
    refused(train(data, out, "--max-steps", "2", "--batch-size", "4", "--sft-arg", "save_strategy=no"), 2,
            f"{out} was produced with other settings (option sft.max_steps: 1 -> 2)", "--restart")
    other = write_instruction_fixture(tmp_path / "other", n_train=5)
    refused(train(other, out, *QUICK), 2, "inputs: hash")
    restarted = train(data, out, "--max-steps", "2", "--batch-size", "4", "--sft-arg", "save_strategy=no",
                      "--restart")
    assert restarted.exit_code == 0, restarted.output
    assert json.loads((out / "training_card.json").read_text())["result"]["global_step"] == 2


def test_killed_run_resumes_from_its_checkpoint(data, tmp_path):
    """kill -9 mid-training: the record stays at running, nothing looks finished; the rerun continues."""
    out = tmp_path / "o"
    args = ["--max-steps", "40", "--batch-size", "4", "--save-steps", "1", "--sft-arg", "save_total_limit=2"]
    env = {**os.environ, "PYTHONPATH": str(SRC), "HF_DATASETS_CACHE": str(tmp_path / "hf-datasets"),
           "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "ava.cli", "train", "--data", str(data), "--model", "tiny",
                             "--out", str(out), *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while not (out / "checkpoints" / "checkpoint-2").is_dir() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert read_run(out).status == RunStatus.RUNNING
    from ava.runs import incomplete_reason  # every reader of "finished?" says the writer is gone
    assert incomplete_reason(out).startswith("its run record says interrupted: the process that wrote it is gone: "
                                             f"pid {proc.pid} on ")
    nothing_finished(out)
    result = train(data, out, *args)
    assert result.exit_code == 0, result.output
    assert "took over a stale lock" in result.output
    card = json.loads((out / "training_card.json").read_text())
    assert card["result"]["global_step"] == 40 and read_run(out).complete
    assert read_run(out).info["resumed_from"].startswith("checkpoint-")


# --- during training ------------------------------------------------------------------------------

def test_nan_loss_stops_with_step_and_loss(data, tmp_path):
    out = tmp_path / "o"
    result = train(data, out, "--max-steps", "4", "--batch-size", "4", "--lr", "1e30", "--sft-arg", "optim=sgd",
                   "--sft-arg", "logging_steps=1", "--sft-arg", "save_strategy=no", "--sft-arg", "warmup_steps=0")
    refused(result, 1, "training stopped: loss is nan at step 2", "nothing was saved as a finished model")
    nothing_finished(out)
    record = read_run(out)
    assert record.status == RunStatus.FAILED
    assert record.reason.startswith("NonFiniteLossError: training stopped: loss is nan at step 2;")


# --- operating-system errors ----------------------------------------------------------------------

def test_out_through_a_symlink_loop(data, tmp_path, no_model):
    os.symlink(tmp_path / "loop", tmp_path / "loop")
    refused(train(data, tmp_path / "loop" / "o", *QUICK), 2, f"{tmp_path / 'loop' / 'o'}: a symbolic link on this "
            "path points (directly or not) back to itself", "choose another --out")


def test_disk_full_while_the_card_is_written(data, tmp_path, monkeypatch):
    """The disk fills once training is done: the card's write fails (one line naming it), the record
    cannot be finished either, and it reads as failed with both reasons, never running or complete."""
    import errno

    from ava.runs import read_run_state
    from ava.training import trainer as trainer_module

    real = trainer_module.save_outputs

    def save_then_fill_the_disk(*args, **kwargs):
        outputs = real(*args, **kwargs)

        def fsync(fd):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        monkeypatch.setattr(os, "fsync", fsync)
        return outputs

    monkeypatch.setattr(trainer_module, "save_outputs", save_then_fill_the_disk)
    out = tmp_path / "o"
    refused(train(data, out, *QUICK), 2, f"{out / 'training_card.json'}: no space left on device; free space",
            "rerun the same command to resume")
    monkeypatch.undo()
    assert not (out / "training_card.json").exists() and read_run(out).status == RunStatus.RUNNING
    state = read_run_state(out)
    assert state.status == RunStatus.FAILED and "training_card.json" in state.reason
    assert "then its run record could not be written (No space left on device" in state.reason
    assert not list(out.glob(".*.tmp"))  # no temporary file left to fill the disk further
    again = train(data, out, *QUICK)  # space again: the rerun finishes
    assert again.exit_code == 0, again.output
    assert (out / "training_card.json").is_file() and read_run(out).complete


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory) -> Path:
    """``tiny`` saved as a plain model folder (config, safetensors weights, tokenizer)."""
    from ava.models import load_model

    folder = tmp_path_factory.mktemp("tiny-folder")
    model, tokenizer = load_model("tiny")
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.mark.parametrize("damage, reason", [
    (lambda f: f.write_bytes(f.read_bytes()[:5000]), "incomplete metadata, file not fully covered"),
    (lambda f: f.write_text("version https://git-lfs.github.com/spec/v1\noid sha256:0\nsize 1\n"), "header"),
], ids=["truncated", "not-safetensors"])
def test_model_folder_with_a_damaged_weights_file(data, tmp_path, tiny_folder, damage, reason):
    import shutil

    model = Path(shutil.copytree(tiny_folder, tmp_path / "model"))
    damage(model / "model.safetensors")
    out = tmp_path / "o"
    result = invoke("train", "--data", str(data), "--model", str(model), "--out", str(out), *QUICK)
    refused(result, 2, f"{model / 'model.safetensors'}: not a readable safetensors file (", reason,
            "truncated or not in safetensors format; download or copy the model folder again")
    nothing_finished(out)
    assert read_run(out).status == RunStatus.FAILED and "model.safetensors" in read_run(out).reason


def test_train_part_replaced_in_place_is_refused_on_rerun(data, tmp_path):
    """Issue 26's train-side sibling: the binding holds the build manifest's hash, which names the
    build but not its rows; a train part replaced in place (manifest untouched) must not be taken as
    the data the finished run was trained on."""
    out = tmp_path / "o"
    first = train(data, out, *QUICK)
    assert first.exit_code == 0, first.output
    assert read_run(out).info["data_files"]  # every train part and its sha256
    part = sorted((data / "data").glob("train-*.parquet"))[0]
    table = pq.read_table(part)
    pq.write_table(table.take(list(range(table.num_rows))[::-1]), part)  # the rows reordered: same count, valid
    line = refused(train(data, out, *QUICK), 2, f"{out} was trained on other rows of {data}", f"data/{part.name}",
                   "--restart")
    assert "training_card.json" not in line
    assert (out / "training_card.json").is_file() and read_run(out).complete  # the finished run is kept
    again = train(data, out, *QUICK, "--restart")
    assert again.exit_code == 0, again.output
