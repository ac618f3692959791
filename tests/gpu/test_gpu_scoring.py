"""The engine on CUDA: exact in fp32, within a measured bound in bf16, halving batches on a real
out-of-memory, and correct with a model spread over devices by accelerate.

The reference is the naive scorer in fp32 on CPU (one forward per option, batch 1) on real
OpinionQA steering prompts, with the ``tiny`` built-in's real weights.
"""

from __future__ import annotations

import math

import pytest
import torch

from ava.models import load_scorer
from ava.models.engine import EngineConfig, LetterEngine
from ava.models.reference import reference_score

pytestmark = pytest.mark.gpu

# bf16 against the fp32 reference, on option probabilities, over these 134 prompts, measured on CPU
# (torch 2.13 bf16): 1.3e-4 for tiny (its answers are nearly uniform), 3.0e-3 for the random model
# below (letter probabilities spread up to 0.26), and 4.6e-2 for smollm2 (real 135M weights, not
# carried to the GPU machine: bf16 moves a real model's answer distribution by up to ~5 points).
# The bound leaves room for CUDA's different kernels; the GPU run reports the measured values.
BF16_BOUND = 1e-2
FP32_BOUND = 1e-5


def _probs(logprobs) -> list[float]:
    z = math.log(sum(math.exp(v) for v in logprobs))
    return [math.exp(v - z) for v in logprobs]


def max_dp(a, b) -> float:
    """Largest difference between two scorings' option probabilities (renormalised over options)."""
    return max(abs(x - y) for p, q in zip(a, b, strict=True)
               for x, y in zip(_probs(p.logprobs), _probs(q.logprobs), strict=True))


def max_dlogp(a, b) -> float:
    return max(abs(x - y) for p, q in zip(a, b, strict=True) for x, y in zip(p.logprobs, q.logprobs, strict=True))


def random_model(tokenizer, device: str, dtype=torch.float32):
    """A randomly initialised 4-layer Llama (hidden 512, MLP 1536), seeded: its letter
    probabilities are far from uniform, unlike tiny's; all 134 prompts in one batch need about a
    GiB of activations in fp32, enough to overrun a capped allocator."""
    from transformers import AutoModelForCausalLM, LlamaConfig

    config = LlamaConfig(hidden_size=512, num_hidden_layers=4, num_attention_heads=8, num_key_value_heads=8,
                         intermediate_size=1536, vocab_size=len(tokenizer), max_position_embeddings=4096,
                         pad_token_id=tokenizer.eos_token_id, tie_word_embeddings=False)
    torch.manual_seed(0)
    with torch.device(device):
        return AutoModelForCausalLM.from_config(config, dtype=dtype).eval()


def _engine(name: str, tiny_dir: str, device: str, dtype: str) -> LetterEngine:
    """``tiny`` through the loader (real weights, dtype and identity as users get them), or the
    random model built on the device."""
    if name == "tiny":
        scorer = load_scorer(tiny_dir, device=device, dtype=dtype)
        assert scorer.identity.endswith(":bf16") == (dtype == "bf16")
        return scorer.engine
    tokenizer = load_scorer(tiny_dir, device="cpu").engine.tokenizer
    torch_dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[dtype]
    return LetterEngine(random_model(tokenizer, device, torch_dtype), tokenizer)


def naive_sample(requests):
    """Every third request (45 of 134): the naive reference costs a forward per option."""
    return requests[::3]


@pytest.fixture(scope="module")
def cpu_reference(tiny_dir, steering_requests):
    """Per model, in fp32 on CPU: the naive scores of :func:`naive_sample` and the engine's
    scores of every request."""
    out = {}
    for name in ("tiny", "random"):
        engine = _engine(name, tiny_dir, "cpu", "fp32")
        out[name] = reference_score(engine, naive_sample(steering_requests)), engine.score(steering_requests)
    return out


@pytest.mark.parametrize("name", ["tiny", "random"])
def test_fp32_on_cuda_equals_the_cpu_reference(name, device, tiny_dir, steering_requests, cpu_reference, record):
    naive, engine_cpu = cpu_reference[name]
    engine = _engine(name, tiny_dir, device, "fp32")
    assert engine.device.type == device
    got = engine.score(steering_requests)
    sampled = naive_sample(got)
    record(f"fp32 {name}: max |dp| device engine vs CPU naive", max_dp(sampled, naive))
    record(f"fp32 {name}: max |dlogp| device engine vs CPU naive", max_dlogp(sampled, naive))
    record(f"fp32 {name}: max |dp| device engine vs CPU engine", max_dp(got, engine_cpu))
    assert max_dp(sampled, naive) <= FP32_BOUND
    assert max_dp(got, engine_cpu) <= FP32_BOUND


@pytest.mark.parametrize("name", ["tiny", "random"])
def test_bf16_on_cuda_within_the_stated_bound(name, device, tiny_dir, steering_requests, cpu_reference, record):
    naive, engine_cpu = cpu_reference[name]
    engine = _engine(name, tiny_dir, device, "bf16")
    assert engine.model.dtype == torch.bfloat16
    got = engine.score(steering_requests)
    versus_engine, versus_naive = max_dp(got, engine_cpu), max_dp(naive_sample(got), naive)
    record(f"bf16 {name}: max |dp| device engine vs CPU fp32 engine, all prompts (bound {BF16_BOUND})", versus_engine)
    record(f"bf16 {name}: max |dp| device engine vs CPU fp32 naive (bound {BF16_BOUND})", versus_naive)
    assert versus_engine <= BF16_BOUND and versus_naive <= BF16_BOUND


def test_out_of_memory_halves_the_batch_for_real(device, tiny_dir, steering_requests, record):
    """The process's GPU memory is capped just above the weights; one batch of every prompt does
    not fit, the engine halves until batches fit, and the scores equal an uncapped run's.
    (On the CPU dry run the cap is simulated: batches over 32 rows raise CUDA's OOM error.)"""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_dir)
    model = random_model(tokenizer, device)
    small = EngineConfig(max_batch_tokens=2048, use_prefix_cache=False)
    expected = LetterEngine(model, tokenizer, small).score(steering_requests)
    rows_tried, rows_done = [], []
    hooks = [model.register_forward_pre_hook(lambda m, a, k: rows_tried.append(k["input_ids"].shape[0]),
                                             with_kwargs=True),
             model.register_forward_hook(lambda m, a, k, o: rows_done.append(k["input_ids"].shape[0]),
                                         with_kwargs=True)]
    if device == "cpu":
        def fake_cap(module, args, kwargs):
            if kwargs["input_ids"].shape[0] > 32:
                raise torch.cuda.OutOfMemoryError("simulated: CUDA out of memory")
        hooks.append(model.register_forward_pre_hook(fake_cap, with_kwargs=True))
    engine = LetterEngine(model, tokenizer, EngineConfig(max_batch_tokens=1 << 20, max_batch_size=4096,
                                                         use_prefix_cache=False))
    try:
        if device == "cuda":
            torch.cuda.empty_cache()
            cap = torch.cuda.memory_reserved() + 192 * 2**20
            torch.cuda.set_per_process_memory_fraction(cap / torch.cuda.get_device_properties(0).total_memory)
            torch.cuda.reset_peak_memory_stats()
        got = engine.score(steering_requests)
        if device == "cuda":
            record("OOM test: peak reserved MiB under the cap", torch.cuda.max_memory_reserved() // 2**20)
            record("OOM test: cap MiB", cap // 2**20)
    finally:
        if device == "cuda":
            torch.cuda.set_per_process_memory_fraction(1.0)
        for hook in hooks:
            hook.remove()
    record("OOM test: rows of the first batch tried", rows_tried[0])
    record("OOM test: largest batch that completed", max(rows_done))
    record("OOM test: forward passes tried / completed", f"{len(rows_tried)} / {len(rows_done)}")
    assert rows_tried[0] == len(steering_requests)  # one batch of everything was attempted ...
    assert max(rows_done) < len(steering_requests)  # ... did not fit, and was halved until it did
    assert len(got) == len(expected) and max_dp(got, expected) <= FP32_BOUND


def test_model_spread_over_gpu_and_cpu_scores_alike(device, tiny_dir, steering_requests, cpu_reference, record):
    """accelerate's dispatch with layer 0 executing on CPU and the rest on the GPU (one card
    cannot show two GPUs; two devices are what matters): inputs go to the first device, the
    prefix tree's key/value caches stay on each layer's device, and scores equal the reference."""
    if device != "cuda":
        pytest.skip("needs a CUDA device next to the CPU")
    from accelerate import dispatch_model

    _, engine_cpu = cpu_reference["tiny"]
    loaded = load_scorer(tiny_dir, device="cpu", dtype="fp32").engine
    placement = {"model.embed_tokens": "cpu", "model.rotary_emb": "cpu", "model.layers.0": "cpu",
                 "model.layers.1": 0, "model.norm": 0, "lm_head": 0}
    # as from_pretrained(device_map=...) dispatches, but executing the CPU part on the CPU
    model = dispatch_model(loaded.model, device_map=placement, main_device="cpu",
                           skip_keys=loaded.model._skip_keys_device_placement)
    engine = LetterEngine(model, loaded.tokenizer)
    assert engine.device.type == "cpu"  # the embedding's device: where inputs must go
    got = engine.score(steering_requests)
    record("device-map (cpu+cuda) max |dp| vs CPU engine", max_dp(got, engine_cpu))
    assert max_dp(got, engine_cpu) <= FP32_BOUND
