"""``ava eval --framing auto|chat|plain``: which framing a model gets, that it is said, recorded
and part of the scorer's identity (cache keys), and that the plain framing is one flag away."""

from __future__ import annotations

import json

import pytest

from ava.evals.cli import plan_eval
from ava.evals.framing import FramingError, has_chat_template, resolve_framing
from ava.models.options import ModelOptions


def test_auto_is_chat_for_an_instruction_tuned_builtin_and_plain_otherwise():
    smol = resolve_framing("smollm2")
    assert (smol.name, smol.chat, smol.asked) == ("chat", True, "auto")
    assert smol.reason == "auto: smollm2 is instruction-tuned"
    assert "--framing plain for the plain framing" in smol.describe()
    tiny = resolve_framing("tiny")
    assert (tiny.name, tiny.chat) == ("plain", False) and "not instruction-tuned" in tiny.reason
    assert resolve_framing("uniform").name == "none"


def test_asked_framing_wins_and_chat_without_a_template_is_refused():
    assert resolve_framing("smollm2", "plain").name == "plain"
    assert resolve_framing("smollm2", "chat").reason == "--framing chat"
    with pytest.raises(FramingError, match="model 'tiny' has no chat template; use --framing plain"):
        resolve_framing("tiny", "chat")
    with pytest.raises(FramingError, match="expected one of auto, chat, plain"):
        resolve_framing("tiny", "sometimes")


def _folder(tmp_path, name, files):
    folder = tmp_path / name
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    for file, text in files.items():
        (folder / file).write_text(text)
    return folder


def test_a_local_model_is_chat_when_its_tokenizer_has_a_template(tmp_path):
    jinja = _folder(tmp_path, "jinja", {"chat_template.jinja": "{{ messages }}"})
    config = _folder(tmp_path, "config", {"tokenizer_config.json": json.dumps({"chat_template": "{{ x }}"})})
    base = _folder(tmp_path, "base", {"tokenizer_config.json": json.dumps({"model_max_length": 8})})
    assert has_chat_template(str(jinja)) and has_chat_template(str(config)) and not has_chat_template(str(base))
    assert resolve_framing(str(jinja)).name == "chat" and "has chat template" in resolve_framing(str(jinja)).reason
    assert resolve_framing(str(base)).name == "plain"
    with pytest.raises(FramingError, match="has no chat template"):
        resolve_framing(str(base), "chat")


def test_the_framing_is_in_the_plan_the_config_and_the_identity(tmp_path):
    chat = plan_eval("smollm2", None, "globalopinionqa", None, False, 1, tmp_path, 0, "auto", None, None)
    plain = plan_eval("smollm2", None, "globalopinionqa", None, False, 1, tmp_path, 0, "plain", None, None)
    assert chat.config["framing"] == "chat" and chat.config["chat"] is True
    assert chat.config["framing_reason"] == "auto: smollm2 is instruction-tuned"
    assert plain.config["framing"] == "plain" and plain.config["framing_asked"] == "plain"
    smol = ModelOptions("smollm2")
    assert smol.identity(chat=chat.framing.chat) != smol.identity(chat=plain.framing.chat)
    assert smol.identity(chat=True).endswith(":chat") and chat.model_options() == smol


def test_a_generation_benchmark_has_no_framing(tmp_path):
    plan = plan_eval("smollm2", None, "ava-tasks", None, False, 1, tmp_path, 0, "auto", str(tmp_path), None)
    assert plan.framing.name == "none" and not plan.framing.chat
    assert "trained on" in plan.framing.describe()
