"""ava train: a few LoRA steps on ``tiny`` lower the loss; the saved adapter reloads exactly."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from ava.training.config import load_config, parse_assignments
from ava.training.data import TrainingDataError, read_chat_jsonl, read_split, stratified_sample
from ava.training.format import generation_prefix, training_record

GENDER = ("male", "female")
AGES = ("18-24", "25-34", "55-64")
STATES = ("Ohio|Iowa|Maine", "Texas|Utah|Nevada")


def _rows(split: str, n: int) -> list[dict]:
    """Instruction rows in the builder's schema; deterministic, so tests can count them."""
    rows = []
    for i in range(n):
        brand = f"Brand{i % 5}"
        body = f"Save big on {'boots' if i % 2 else 'tractors'} this fall at {brand}."
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


def write_instruction_fixture(root: Path, n_train: int = 12, n_test: int = 6) -> Path:
    """A small dataset in the exact layout ``ava build`` writes (two parquet parts per split)."""
    for split, n in (("train", n_train), ("test_advertiser", n_test), ("test_temporal", n_test)):
        rows = _rows(split, n)
        folder = root / "data" / split
        folder.mkdir(parents=True)
        half = len(rows) // 2
        for k, part in enumerate((rows[:half], rows[half:])):
            pq.write_table(pa.Table.from_pylist(part), folder / f"part-{k:05d}.parquet")
    (root / "manifest.json").write_text(json.dumps({"version": "fixture", "counts": n_train}), encoding="utf-8")
    return root


def _completion_nll(model, tokenizer, samples) -> float:
    from ava.evals.metrics.text import conditional_perplexities

    ppl = conditional_perplexities(
        model, tokenizer, [generation_prefix(tokenizer, s.prompt) for s in samples], [s.response for s in samples]
    )
    return float(sum(ppl) / len(ppl))


def test_reader_and_sampling(tmp_path):
    data = write_instruction_fixture(tmp_path / "d")
    train = read_split(data, "train")
    assert len(train) == 48 and train[0].ad_ids == ("ad0",)
    sample = stratified_sample(train, 8, seed=3)
    assert sorted({s.task for s in sample}) == ["TAP-A", "TAP-G", "TAP-R", "TS-E"]
    assert len(sample) == 8 and sample == stratified_sample(train, 8, seed=3)
    with pytest.raises(TrainingDataError, match="no part-"):
        read_split(tmp_path, "train")


def test_mix_file_errors_name_the_line(tmp_path):
    path = tmp_path / "chat.jsonl"
    path.write_text(
        '{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}\n'
        '{"prompt": "2+2?", "completion": "4"}\n'
        '{"messages": [{"role": "user", "content": "no answer"}]}\n',
        encoding="utf-8",
    )
    with pytest.raises(TrainingDataError, match=r"chat.jsonl:3: .*end with the assistant"):
        read_chat_jsonl(path)


def test_plain_format_for_models_without_chat_template():
    from ava.models import load_model

    _, tok = load_model("tiny")
    assert training_record(tok, "Q?", "A.") == {"prompt": "Q?\n\n", "completion": "A."}
    assert generation_prefix(tok, "Q?") == "Q?\n\n"


def test_config_overrides_and_sft_passthrough(tmp_path):
    cfg = load_config("tiny", tmp_path, tmp_path / "o", overrides={"seed": 7, "limit": None},
                      sft_overrides={"max_steps": 3, "learning_rate": None,
                                     **parse_assignments(["optim=sgd", "save_strategy=no", "bf16=false"])})
    assert cfg.seed == 7 and cfg.sft["max_steps"] == 3 and cfg.sft["optim"] == "sgd"
    assert cfg.sft["save_strategy"] == "no" and cfg.sft["bf16"] is False
    assert cfg.sft["learning_rate"] == 2.0e-4  # None means "not given": the YAML value stays
    full = load_config("tiny", tmp_path, tmp_path / "o", method="full")
    assert full.lora == {} and full.sft["learning_rate"] == 2.0e-5


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
    samples = read_split(data, "train")
    base, tok = load_model("tiny")
    before = _completion_nll(base, tok, samples)

    outcome = train(cfg, merge=True)
    after = _completion_nll(outcome.model, tok, samples)
    assert after < before * 0.95, (before, after)

    card = json.loads((out / "training_card.json").read_text())
    assert card["result"]["global_step"] == 12 and card["seed"] == 0
    assert card["data"]["n_samples"] == 48 and card["data"]["mix"]["n_used"] == 5  # 48 * 0.1 / 0.9
    assert len(card["data"]["manifest_sha256"]) == 64 and card["prompt_format"].startswith("plain")
    assert sorted(p.name for p in (out / "checkpoints").glob("checkpoint-*")) == ["checkpoint-12", "checkpoint-6"]

    ids = torch.tensor([tok("Given an ad for Brand1, for which gender")["input_ids"]])
    with torch.no_grad():
        trained = outcome.model(ids).logits
        reloaded, _ = load_model("tiny", adapter=str(out / "adapter"))
        merged, _ = load_model(str(out / "merged"))
        torch.testing.assert_close(reloaded(ids).logits, trained)
        torch.testing.assert_close(merged(ids).logits, trained, rtol=1e-4, atol=1e-4)
        assert not torch.allclose(base(ids).logits, trained)

    with pytest.raises(FileExistsError, match="finished"):
        train(cfg)


def test_resume_continues_from_checkpoint_and_refuses_changed_settings(tmp_path):
    from ava.training.trainer import train

    data = write_instruction_fixture(tmp_path / "data", n_train=4)
    out = tmp_path / "run"
    sft = {"max_steps": 2, "save_steps": 2, "per_device_train_batch_size": 4, "logging_steps": 1,
           "max_length": 96}
    first = load_config("tiny", data, out, sft_overrides=sft)
    train(first)
    (out / "training_card.json").unlink()  # pretend it stopped after saving checkpoint-2
    longer = load_config("tiny", data, out, sft_overrides={**sft, "max_steps": 4})
    with pytest.raises(ValueError, match="different settings"):
        train(longer, resume=True)
    (out / "train_config.json").unlink()
    with pytest.raises(FileExistsError, match="unfinished"):
        (out / "train_config.json").write_text(json.dumps(longer.to_dict()))
        train(longer)
    outcome = train(longer, resume=True)
    assert outcome.card["result"] == {**outcome.card["result"], "global_step": 4, "resumed": True}


def test_cli_full_finetune_and_clear_errors(tmp_path):
    from typer.testing import CliRunner

    from ava.cli import app

    data = write_instruction_fixture(tmp_path / "data", n_train=2)
    runner = CliRunner()
    bad = runner.invoke(app, ["train", "--data", str(tmp_path / "nowhere"), "--model", "tiny", "--out",
                              str(tmp_path / "bad")])
    assert bad.exit_code == 2 and "no part-*.parquet files" in bad.output
    out = tmp_path / "full"
    ok = runner.invoke(app, ["train", "--data", str(data), "--model", "tiny", "--out", str(out), "--full",
                             "--max-steps", "2", "--batch-size", "4", "--sft-arg", "save_strategy=no"])
    assert ok.exit_code == 0, ok.output
    card = json.loads((out / "training_card.json").read_text())
    assert card["method"] == "full" and card["hyperparameters"]["sft"]["learning_rate"] == 2.0e-5
    assert (out / "model" / "config.json").exists() and not (out / "adapter").exists()
