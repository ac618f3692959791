"""ava train: the reader, the tokenisation (same as TRL's), exact batching, LoRA steps on ``tiny``."""

from __future__ import annotations

import json
import random
import shutil
from collections import defaultdict
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from ava.instructions.dataset import DatasetError, DatasetLayout, Samples, read_split
from ava.instructions.prompt_format import generation_prefix, training_record
from ava.instructions.selection import stratified_sample
from ava.training.config import ConfigError, load_config
from ava.training.mix import TrainingDataError, read_chat_jsonl

GENDER = ("male", "female")
AGES = ("18-24", "25-34", "55-64")
STATES = ("Ohio|Iowa|Maine", "Texas|Utah|Nevada")
FIELDS = ("id", "task", "family", "split", "prompt", "response", "advertiser", "ad_ids", "template_version", "label",
          "source_text")
SCHEMA = pa.schema([(f, pa.list_(pa.string()) if f == "ad_ids" else pa.string()) for f in FIELDS])
CHATML = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


@pytest.fixture(autouse=True)
def datasets_cache(tmp_path, monkeypatch):
    """Keep the Arrow copies ``datasets`` makes of the fixtures out of the user's cache."""
    import datasets

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "hf-datasets"))


def _rows(split: str, n: int, body_words: int = 0) -> list[dict]:
    """Instruction rows in the builder's schema; deterministic, so tests can count them."""
    rows = []
    for i in range(n):
        brand = f"Brand{i % 5}"
        body = f"Save big on {'boots' if i % 2 else 'tractors'} this fall at {brand}."
        body += "".join(f" word{k}" for k in range(body_words))
        g, a, s = GENDER[i % 2], AGES[i % 3], STATES[i % 2]
        common = {"split": split, "advertiser": brand, "ad_ids": [f"ad{i}"], "template_version": "t1"}
        rows += [
            dict(common, id=f"{split}-g{i}", task="TAP-G", family="TAP", label=g, source_text=None,
                 prompt=f"Given an ad for {brand}, for which gender does it perform best? "
                        f"Content of the advertisement is {body} Answer:",
                 response=f"Best target audience for this ad is {g.title()}."),
            dict(common, id=f"{split}-a{i}", task="TAP-A", family="TAP", label=a, source_text=None,
                 prompt=f"Given an ad for {brand}, for which age group does it perform best? "
                        f"Content of the advertisement is {body} Answer:",
                 response=f"Best target age group for this ad is the audience aged {a}."),
            dict(common, id=f"{split}-r{i}", task="TAP-R", family="TAP", label=s, source_text=None,
                 prompt=f"Given an advertisement, find the top 3 US states where it performs best. {body} Answer:",
                 response="Top 3 states where the ad will perform best are " + ", ".join(s.split("|")) + "."),
            dict(common, id=f"{split}-t{i}", task="TS-E", family="TS", label=None,
                 source_text=f"The advertisement titled Sale with content : {body}",
                 prompt=f"This ad for {brand} under-performs. Write a better one. Current Advertisement: "
                        f"The advertisement titled Sale with content : {body} Answer:",
                 response=f"The advertisement titled Big Sale with content : Hurry, {body}"),
        ]
    return rows


def write_instruction_fixture(root: Path, n_train: int = 12, n_test: int = 6, body_words: int = 0) -> Path:
    """A small dataset in the layout ``ava build`` writes (two parquet parts per split, manifest), with
    the run record of a finished build."""
    from ava.runs import Binding, Output, start_run

    layout = DatasetLayout(root)
    with start_run(Output(root, folder=True), "instructions", Binding(inputs="fixture")):
        totals = {}
        for split, n in (("train", n_train), ("test_advertiser", n_test), ("test_temporal", n_test)):
            rows = _rows(split, n, body_words)
            totals[split] = len(rows)
            layout.data.mkdir(exist_ok=True)
            half = len(rows) // 2
            for k, part in enumerate((rows[:half], rows[half:])):
                pq.write_table(pa.Table.from_pylist(part, schema=SCHEMA), layout.part(split, k, 2))
        manifest = {"version": "fixture", "totals": totals}
        (root / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    return root


def _reference_sample(samples, limit, seed, per_task=False):
    """The stratified sampler as it was over Python lists (results must not move with the reader)."""
    by_task = defaultdict(list)
    for i, s in enumerate(samples):
        by_task[s.task].append(i)
    rng, keep, tasks = random.Random(seed), set(), sorted(by_task)
    for k, task in enumerate(tasks):
        quota = limit if per_task else limit // len(tasks) + (1 if k < limit % len(tasks) else 0)
        idx = by_task[task]
        keep.update(idx if len(idx) <= quota else rng.sample(idx, quota))
    return [s for i, s in enumerate(samples) if i in keep]


def _completion_nll(model, tokenizer, samples) -> float:
    from ava.evals.model_metrics import conditional_perplexities

    ppl = conditional_perplexities(
        model, tokenizer, [generation_prefix(tokenizer, s.prompt) for s in samples], [s.response for s in samples]
    )
    return float(sum(ppl) / len(ppl))


def test_reader_is_lazy_and_sampling_matches_the_list_sampler(tmp_path):
    data = write_instruction_fixture(tmp_path / "d", n_train=10)
    train = read_split(data, "train")
    assert isinstance(train, Samples) and len(train) == 40 and train[0].ad_ids == ("ad0",)
    assert [s.id for s in train][:2] == ["train-g0", "train-a0"] and train[1:3] == list(train)[1:3]
    assert train[-1] == list(train)[-1] and train[-1].id == "train-t9"
    with pytest.raises(IndexError):
        train[40]
    as_list = list(train)
    for limit, per_task, seed in ((8, False, 3), (9, False, 0), (3, True, 5), (40, False, 1)):
        sample = stratified_sample(train, limit, seed, per_task=per_task)
        assert isinstance(sample, Samples)
        assert list(sample) == _reference_sample(as_list, limit, seed, per_task)
        assert stratified_sample(as_list, limit, seed, per_task=per_task) == list(sample)
    assert sorted({s.task for s in stratified_sample(train, 8, 3)}) == ["TAP-A", "TAP-G", "TAP-R", "TS-E"]
    assert train.column("task")[:4] == ["TAP-G", "TAP-A", "TAP-R", "TS-E"]
    with pytest.raises(DatasetError, match=r"not a finished instruction build \(no run record \(run.json\)\)"):
        read_split(tmp_path, "train")


def test_reader_reads_the_files_the_card_names(tmp_path):
    """The reader's parts are the card's ``data_files`` (what ``load_dataset(OUT)`` reads), in part
    order; a file in another layout (``data/<split>/part-N``) is not read, and one more part under
    the builder's names is found and refused by the manifest's count."""
    data = write_instruction_fixture(tmp_path / "d", n_train=2)
    layout = DatasetLayout(data)
    assert [p.name for p in layout.parts("train")] == ["train-00000-of-00002.parquet", "train-00001-of-00002.parquet"]
    train = read_split(data, "train")
    assert len(train) == 8 and len(read_split(data, "test_advertiser")) == 24
    assert [s.id for s in train][:4] == pq.read_table(layout.part("train", 0, 2)).column("id").to_pylist()
    (layout.data / "train").mkdir()
    shutil.copy(layout.part("train", 0, 2), layout.data / "train" / "part-00000.parquet")
    assert list(read_split(data, "train")) == list(train)
    shutil.copy(layout.part("train", 0, 2), layout.data / "train-00002-of-00002.parquet")
    with pytest.raises(DatasetError, match="says 8 train samples but the Parquet parts hold 12"):
        read_split(data, "train")


def test_mix_file_errors_name_the_line(tmp_path):
    path = tmp_path / "chat.jsonl"
    path.write_text(
        '{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}\n'
        '{"prompt": "2+2?", "completion": "4"}\n'
        '{"messages": [{"role": "user", "content": "no answer"}]}\n',
        encoding="utf-8",
    )
    with pytest.raises(TrainingDataError, match=r"chat.jsonl:3: a conversation needs .*end with the assistant"):
        read_chat_jsonl(path)


def test_plain_format_for_models_without_chat_template():
    from ava.models import load_model

    _, tok = load_model("tiny")
    assert training_record(tok, "Q?", "A.") == {"prompt": "Q?\n\n", "completion": "A."}
    assert generation_prefix(tok, "Q?") == "Q?\n\n"


def test_flags_sft_args_and_recipe_precedence(tmp_path):
    flags = {"max_steps": 3, "learning_rate": None}
    cfg = load_config("tiny", tmp_path, tmp_path / "o", overrides={"seed": 7, "limit": None}, sft_overrides=flags,
                      sft_args=["optim=sgd", "save_strategy=no", "bf16=false", "warmup_steps=1e-2"])
    assert cfg.seed == 7 and cfg.sft["max_steps"] == 3 and cfg.sft["optim"] == "sgd"
    assert cfg.sft["save_strategy"] == "no" and cfg.sft["bf16"] is False and cfg.sft["warmup_steps"] == 0.01
    assert cfg.sft["learning_rate"] == 2.0e-4  # None means "not given": the recipe's value stays
    assert cfg.sources["max_steps"] == "--max-steps" and cfg.sources["optim"] == "--sft-arg"
    assert cfg.sources["learning_rate"] == "default.yaml:sft"
    full = load_config("tiny", tmp_path, tmp_path / "o", method="full")
    assert full.lora == {} and full.sft["learning_rate"] == 2.0e-5
    assert full.sources["learning_rate"] == "default.yaml:full_sft"
    with pytest.raises(ConfigError, match="both set max_steps"):
        load_config("tiny", tmp_path, tmp_path, sft_overrides=flags, sft_args=["max_steps=5"])
    with pytest.raises(ConfigError, match=r"'learnin_rate' is not a trl.SFTConfig field \(did you mean learning_rate"):
        load_config("tiny", tmp_path, tmp_path, sft_args=["learnin_rate=1"])
    with pytest.raises(ConfigError, match="expected int"):
        load_config("tiny", tmp_path, tmp_path, sft_args=["per_device_train_batch_size=2.5"])


def _tiny_with_template(chat: bool):
    from ava.models import load_model

    model, tok = load_model("tiny")
    if chat:
        tok.chat_template = CHATML
    return model, tok


@pytest.mark.parametrize("chat", [False, True], ids=["plain", "chat-template"])
def test_tokenisation_equals_trl(tmp_path, chat):
    """ava tokenises itself (to cut long pairs its way); untouched pairs must equal TRL's own rows."""
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    from ava.training.encode import encode_pairs

    data = write_instruction_fixture(tmp_path / "d", n_train=3)
    samples = list(read_split(data, "train"))
    model, tok = _tiny_with_template(chat)
    ours = encode_pairs(Dataset.from_list([{"prompt": s.prompt, "response": s.response} for s in samples]), tok, None)
    raw = Dataset.from_list([training_record(tok, s.prompt, s.response) for s in samples])
    args = SFTConfig(output_dir=str(tmp_path / "o"), max_length=None, bf16=False, report_to="none",
                     activation_checkpointing=False)
    theirs = SFTTrainer(model=model, args=args, train_dataset=raw, processing_class=tok).train_dataset
    assert list(ours["input_ids"]) == list(theirs["input_ids"]) and list(ours["labels"]) == list(theirs["labels"])
    assert all(c == 0 for c in ours["prompt_cut"]) and all(-100 in row for row in ours["labels"])


def test_long_pairs_keep_the_response_and_the_prompt_ends():
    from ava.training.encode import encode_record, fit

    assert fit(10, 5, None) == (10, 0, 5) and fit(10, 5, 15) == (10, 0, 5)
    assert fit(100, 20, 64) == (22, 22, 20)  # prompt cut in the middle, response whole
    assert fit(10, 100, 64) == (5, 5, 54)  # a short prompt stays whole, the response loses its end
    assert fit(100, 100, 64) == (16, 16, 32)  # the prompt keeps at least half the window
    _, tok = _tiny_with_template(False)
    prompt = "Given an ad, for which gender? " + " ".join(f"w{k}" for k in range(200)) + " Answer:"
    row = encode_record(tok, training_record(tok, prompt, "Female."), 48)
    text = tok.decode([t for t, lab in zip(row["input_ids"], row["labels"], strict=True) if lab == -100])
    assert len(row["input_ids"]) == 48 and row["prompt_cut"] > 0 and row["response_cut"] == 0
    assert text.startswith("<s> Given an ad") and text.rstrip().endswith("Answer:")
    assert tok.decode([t for t in row["labels"] if t != -100]).startswith("Female.")


def test_padding_free_batches_give_the_padded_loss(tmp_path):
    """Padding-free batches (one row, position ids restart per pair) are exact with completion-only loss."""
    from datasets import Dataset
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    from ava.training.encode import encode_pairs

    data = write_instruction_fixture(tmp_path / "d", n_train=2)
    model, tok = _tiny_with_template(False)
    rows = encode_pairs(Dataset.from_list([{"prompt": s.prompt, "response": s.response}
                                           for s in read_split(data, "train")]), tok, None)
    examples = [{"input_ids": r["input_ids"], "labels": r["labels"]} for r in rows]
    losses = []
    for padding_free in (False, True):
        batch = DataCollatorForLanguageModeling(pad_token_id=tok.eos_token_id, padding_free=padding_free)(examples)
        keys = ("input_ids", "labels", "position_ids") if padding_free else ("input_ids", "labels", "attention_mask")
        with torch.no_grad():
            losses.append(model(**{k: batch[k] for k in keys}).loss)
    assert batch["input_ids"].shape[0] == 1
    torch.testing.assert_close(losses[0], losses[1], rtol=1e-5, atol=1e-5)


def test_lora_training_lowers_loss_and_adapter_reloads(tmp_path):
    from ava.models import load_model
    from ava.training.trainer import train

    data = write_instruction_fixture(tmp_path / "data")
    chat = tmp_path / "chat.jsonl"
    chat.write_text("\n".join(json.dumps({"prompt": f"Say {w}", "completion": w}) for w in "abcdefgh"), "utf-8")
    out = tmp_path / "run"
    cfg = load_config(
        "tiny", data, out,
        overrides={"mix": str(chat), "mix_ratio": 0.1},
        sft_overrides={"max_steps": 12, "learning_rate": 5e-3, "per_device_train_batch_size": 8,
                       "gradient_accumulation_steps": 1, "logging_steps": 1, "save_steps": 6,
                       "max_length": 128, "warmup_steps": 0},
    )
    samples = list(read_split(data, "train"))
    base, tok = load_model("tiny")
    before = _completion_nll(base, tok, samples)

    outcome = train(cfg, merge=True)
    after = _completion_nll(outcome.model, tok, samples)
    assert after < before * 0.95, (before, after)

    card = json.loads((out / "training_card.json").read_text())
    assert card["result"]["global_step"] == 12 and card["seed"] == 0
    assert card["result"]["num_input_tokens_seen"] > 12 * 8 * 20  # the budget spent: 12 steps of 8 pairs, no padding
    assert card["data"]["n_samples"] == 48 and card["data"]["mix"]["n_used"] == 5  # 48 * 0.1 / 0.9
    assert card["data"]["length_rule"]["n_rows"] == 48 and card["data"]["length_rule"]["n_response_truncated"] == 0
    assert len(card["data"]["manifest_sha256"]) == 64 and card["prompt_format"].startswith("plain")
    assert card["base_model"] == "tiny" and card["model_identity"].startswith("builtin:tiny")
    assert sorted(p.name for p in (out / "checkpoints").glob("checkpoint-*")) == ["checkpoint-12", "checkpoint-6"]
    adapter_config = json.loads((out / "adapter" / "adapter_config.json").read_text())
    assert adapter_config["base_model_name_or_path"] == "tiny"  # a name that loads anywhere, not a cache path

    ids = torch.tensor([tok("Given an ad for Brand1, for which gender")["input_ids"]])
    with torch.no_grad():
        trained = outcome.model(ids).logits
        reloaded, _ = load_model("tiny", adapter=str(out / "adapter"))
        merged, _ = load_model(str(out / "merged"))
        torch.testing.assert_close(reloaded(ids).logits, trained)
        torch.testing.assert_close(merged(ids).logits, trained, rtol=1e-4, atol=1e-4)
        assert not torch.allclose(base(ids).logits, trained)


def test_latest_checkpoint_skips_and_removes_half_written_ones(tmp_path):
    """A run killed while the Trainer saved checkpoint-3 (no trainer_state.json yet) or wrote its
    state file (torn JSON) resumes from checkpoint-2; the half-written ones are removed."""
    from ava.training.output import latest_checkpoint

    folder = tmp_path / "checkpoints"
    assert latest_checkpoint(folder) is None
    for step, state in [(1, "{}"), (2, '{"global_step": 2}'), (3, None), (10, '{"global_st')]:
        (folder / f"checkpoint-{step}").mkdir(parents=True)
        (folder / f"checkpoint-{step}" / "adapter_model.safetensors").write_bytes(b"x")
        if state is not None:
            (folder / f"checkpoint-{step}" / "trainer_state.json").write_text(state)
    (folder / "checkpoint-x").mkdir()
    assert latest_checkpoint(folder, remove_incomplete=False) == folder / "checkpoint-2"
    assert (folder / "checkpoint-3").is_dir()  # another process than the writer only skips them
    assert latest_checkpoint(folder) == folder / "checkpoint-2"
    assert sorted(p.name for p in folder.iterdir()) == ["checkpoint-1", "checkpoint-2", "checkpoint-x"]


def test_resume_continues_from_checkpoint_and_refuses_changed_settings(tmp_path):
    from ava.runs import BindingMismatch, read_run
    from ava.training.trainer import train

    data = write_instruction_fixture(tmp_path / "data", n_train=4)
    out = tmp_path / "run"
    sft = {"max_steps": 2, "save_steps": 2, "per_device_train_batch_size": 4, "logging_steps": 1,
           "max_length": 96}
    first = train(load_config("tiny", data, out, sft_overrides=sft))
    assert read_run(out).complete and read_run(out).info["resumed_from"] is None
    # as if it had been killed after saving checkpoint-2: no card, the record still running
    (out / "training_card.json").unlink()
    record = json.loads((out / "run.json").read_text())
    (out / "run.json").write_text(json.dumps({**record, "status": "running"}))
    longer = load_config("tiny", data, out, sft_overrides={**sft, "max_steps": 4})
    with pytest.raises(BindingMismatch, match=r"other settings \(option sft.max_steps: 2 -> 4\).*--restart"):
        train(longer)
    # logging settings do not bind a run: the same training with other logging resumes
    again = train(load_config("tiny", data, out, sft_overrides={**sft, "logging_steps": 2}))
    assert read_run(out).info["resumed_from"] == "checkpoint-2" and again.card["result"]["global_step"] == 2
    assert again.card["data"] == first.card["data"] and read_run(out).complete
    done = train(load_config("tiny", data, out, sft_overrides=sft))  # finished: nothing to do
    assert done.model is None and done.card == again.card
    restarted = train(longer, restart=True)
    assert restarted.card["result"]["global_step"] == 4 and read_run(out).info["resumed_from"] is None
    assert read_run(out).binding.options["sft"]["max_steps"] == 4


def test_resumed_run_records_what_an_uninterrupted_one_does(tmp_path, monkeypatch):
    """Interrupted (Ctrl-C) right after checkpoint-2, between two logging steps (logging every 3),
    then resumed: the card (train_loss included) and the loss history equal an uninterrupted run's,
    bit for bit. The Trainer's own mean covers the resumed steps only, and differs."""
    from ava.runs import RunStatus, read_run
    from ava.training import trainer as trainer_module
    from ava.training.guard import StopOnNonFiniteLoss
    from ava.training.trainer import train

    data = write_instruction_fixture(tmp_path / "data", n_train=8)
    sft = {"max_steps": 6, "save_steps": 2, "per_device_train_batch_size": 4, "logging_steps": 3,
           "max_length": 96, "learning_rate": 5e-3, "warmup_steps": 0}
    whole = train(load_config("tiny", data, tmp_path / "whole", sft_overrides=sft))

    class StopAfterFirstCheckpoint(StopOnNonFiniteLoss):
        def on_save(self, args, state, control, **kwargs):
            if state.global_step == 2:
                raise KeyboardInterrupt

    out = tmp_path / "resumed"
    cfg = load_config("tiny", data, out, sft_overrides=sft)
    monkeypatch.setattr(trainer_module, "StopOnNonFiniteLoss", StopAfterFirstCheckpoint)
    with pytest.raises(KeyboardInterrupt):
        train(cfg)
    assert read_run(out).status == RunStatus.INTERRUPTED and not (out / "training_card.json").exists()
    monkeypatch.undo()
    resumed = train(cfg)
    assert read_run(out).info["resumed_from"] == "checkpoint-2"

    assert resumed.card == whole.card
    assert (out / "training_card.json").read_bytes() == (tmp_path / "whole" / "training_card.json").read_bytes()
    def losses(outcome):
        return [(h["step"], h["loss"]) for h in outcome.log_history if "loss" in h]
    assert losses(resumed) == losses(whole) and [s for s, _ in losses(whole)] == [3, 6]
    # the Trainer's own mean (this process's steps only) is what the card used to hold
    assert resumed.metrics["train_loss"] != whole.metrics["train_loss"]
    assert round(whole.metrics["train_loss"], 6) == whole.card["result"]["train_loss"]


def test_cli_full_finetune(tmp_path):
    from typer.testing import CliRunner

    from ava.cli import app

    data = write_instruction_fixture(tmp_path / "data", n_train=2)
    out = tmp_path / "full"
    ok = CliRunner().invoke(app, ["train", "--data", str(data), "--model", "tiny", "--out", str(out), "--full",
                                  "--max-steps", "2", "--batch-size", "4", "--sft-arg", "save_strategy=no"])
    assert ok.exit_code == 0, ok.output
    assert "from the command line: max_steps=2 (--max-steps)" in ok.output
    card = json.loads((out / "training_card.json").read_text())
    assert card["method"] == "full" and card["hyperparameters"]["sft"]["learning_rate"] == 2.0e-5
    assert (out / "model" / "config.json").exists() and not (out / "adapter").exists()


def test_report_to_tensorboard_writes_events(tmp_path):
    pytest.importorskip("tensorboard", reason="the [tensorboard] extra is not installed")
    from ava.training.trainer import train

    data = write_instruction_fixture(tmp_path / "data", n_train=2)
    out = tmp_path / "tb"
    train(load_config("tiny", data, out, sft_overrides={"max_steps": 2, "logging_steps": 1, "report_to": "tensorboard",
                                                        "save_strategy": "no", "per_device_train_batch_size": 4}))
    events = list((out / "checkpoints" / "runs").rglob("events.out.tfevents.*"))
    assert events and events[0].stat().st_size > 0
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(events[0].parent))
    acc.Reload()
    assert [e.step for e in acc.Scalars("train/loss")] == [1, 2]
