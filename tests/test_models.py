"""Models by name: built-ins, the uniform baseline, clear errors, the safetensors cache."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest

from ava.contracts.scoring import ScoreRequest
from ava.models import ModelError, load_scorer, resolve_model
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
