"""``ava``'s training code on CUDA: a few LoRA and full fine-tuning steps on real instruction data
(``ava build`` on real ads), with the results reloading and scoring like the trained model."""

from __future__ import annotations

import math

import pytest
import torch

from ava.models import load_scorer
from ava.models.engine import LetterEngine

pytestmark = pytest.mark.gpu
STEPS = 4


def _train(model: str, data, out, method: str):
    from ava.training.config import load_config
    from ava.training.trainer import train

    cfg = load_config(
        model, data, out, method=method, overrides={"limit": STEPS * 8, "seed": 0},
        sft_overrides={"max_steps": STEPS, "per_device_train_batch_size": 8, "gradient_accumulation_steps": 1,
                       "max_length": 256, "logging_steps": 1, "save_strategy": "no", "report_to": "none",
                       "disable_tqdm": True},
    )
    return train(cfg)


def _max_dp(a, b) -> float:
    def probs(lps):
        z = math.log(sum(math.exp(v) for v in lps))
        return [math.exp(v - z) for v in lps]

    return max(abs(x - y) for p, q in zip(a, b, strict=True)
               for x, y in zip(probs(p.logprobs), probs(q.logprobs), strict=True))


@pytest.mark.parametrize("method", ["lora", "full"])
def test_training_steps_on_the_device(method, device, tiny_dir, train_data, tmp_path, steering_requests, record):
    base = load_scorer(tiny_dir, device="cpu").engine.model
    before = {n: p.detach().clone() for n, p in base.named_parameters()}
    outcome = _train(tiny_dir, train_data, tmp_path / method, method)
    losses = [h["loss"] for h in outcome.log_history if "loss" in h]
    record(f"training {method}: losses per step", [round(v, 4) for v in losses])
    record(f"training {method}: train_runtime s", round(float(outcome.metrics["train_runtime"]), 2))
    assert outcome.card["result"]["global_step"] == STEPS and len(losses) == STEPS
    assert all(math.isfinite(v) for v in losses)
    params = dict(outcome.model.named_parameters())
    assert {p.device.type for p in params.values()} == {device}
    trained = [n for n, p in params.items() if p.requires_grad]
    if method == "lora":
        assert trained and all("lora_" in n for n in trained)
        assert any(params[n].detach().abs().sum() > 0 for n in trained if "lora_B" in n)  # B starts at zero
    else:
        # Full fine-tuning moves the weights; how many elements moved is worth knowing: bf16 weights
        # updated in place lose steps smaller than their rounding unit.
        moved = sum(int((p.detach().cpu().float() != before[n].float()).sum()) for n, p in params.items())
        fraction = moved / sum(p.numel() for p in before.values())
        record("training full: fraction of weight elements changed", round(fraction, 4))
        assert moved > 0
    # The saved result reloads (an adapter by its base's recorded name) and scores like the trained model.
    saved = tmp_path / method / ("adapter" if method == "lora" else "model")
    dtype = next(outcome.model.parameters()).dtype
    reloaded = load_scorer(str(saved), device=device, dtype=dtype).score(steering_requests[:24])
    live = LetterEngine(outcome.model.eval(), outcome.tokenizer).score(steering_requests[:24])
    record(f"training {method}: max |dp| reloaded vs trained", _max_dp(reloaded, live))
    tolerance = 1e-3 if dtype == torch.bfloat16 else 1e-5
    assert _max_dp(reloaded, live) <= tolerance
