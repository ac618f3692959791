"""vLLM's offline ``LLM`` engine, in this process, as a :class:`~.source.LogprobSource`.

For a user with GPUs and ``vllm`` installed who does not want to run a server: the same two
modes as a server, without HTTP. Prefix caching is on (the persona, question stems and chat
headers that prompts share are computed once); the exact mode asks for the letters' own
log-probabilities at the next position (``SamplingParams.logprob_token_ids``: the raw
full-vocabulary log-softmax, one pass per prompt, prefix cache used) and falls back to the
prompt's log-probabilities (``prompt_logprobs``) for anything it did not give. vLLM batches
and schedules the prompts itself.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from ava.models.backends.http import ServerError
from ava.models.backends.source import TokenPrompt

MAX_CHOSEN_IDS = 128  # vLLM's MAX_LOGPROB_TOKEN_IDS


def vllm_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("vllm") is not None


class VLLMSource:
    """An ``vllm.LLM`` over ``model_dir`` (a folder or hub id), ``dtype`` as vLLM spells it."""

    def __init__(self, model_dir: str, dtype: str, revision: str | None = None, max_logprobs: int = 128,
                 **engine_args: Any) -> None:
        import torch
        from vllm import LLM

        # On CPU, vLLM's compile step takes minutes on a few cores for a gain a scoring run
        # does not recover; on GPUs its CUDA graphs are kept.
        engine_args.setdefault("enforce_eager", not torch.cuda.is_available())
        self.llm = LLM(model=model_dir, dtype=dtype, revision=revision, enable_prefix_caching=True,
                       max_logprobs=max_logprobs, **engine_args)
        self.chosen_ids = True

    def where(self) -> str:
        return "vLLM engine (in process)"

    def _run(self, prompts: Sequence[TokenPrompt], params: Any) -> list[Any]:
        from vllm.inputs import TokensPrompt

        try:
            return self.llm.generate([TokensPrompt(prompt_token_ids=list(p.ids)) for p in prompts], params,
                                     use_tqdm=False)
        except Exception as exc:  # vLLM's own validation errors are not ValueErrors: name any as one line
            rid = prompts[0].rid if prompts else "-"
            why = f"{type(exc).__name__}: " + " ".join(str(exc).split())[:300]
            raise ServerError(f"{self.where()}: request {rid} (batch of {len(prompts)}): {why}; "
                              "check the prompts and the engine's settings") from None

    def check(self, text: str, ids: Sequence[int], add_special_tokens: bool, mode: str, top_k: int) -> None:
        """The engine loads this model with this tokenizer (it was built from the same folder)."""
        ours = self.llm.get_tokenizer()(text, add_special_tokens=add_special_tokens).input_ids
        if list(ours) != list(ids):
            raise ServerError(f"{self.where()}: the engine's tokenizer reads the probe prompt as {len(ours)} tokens, "
                              f"ava's as {len(ids)}; load both from the same model folder")

    @staticmethod
    def _values(position: Any, rid: str) -> dict[int | str, float]:
        out: dict[int | str, float] = {}
        for token, lp in dict(position or {}).items():
            if math.isnan(lp.logprob):
                raise ServerError(f"vLLM engine (in process): request {rid}: a NaN log-probability for token {token}")
            out[int(token)] = float(lp.logprob)
        return out

    def top_logprobs(self, prompts: Sequence[TokenPrompt], k: int) -> list[dict[int | str, float]]:
        from vllm import SamplingParams

        outs = self._run(prompts, SamplingParams(max_tokens=1, temperature=0.0, logprobs=k))
        return [self._values(o.outputs[0].logprobs[0], p.rid) for p, o in zip(prompts, outs, strict=True)]

    def chosen_logprobs(self, prompts: Sequence[TokenPrompt], chosen: Sequence[Sequence[int]]) -> list[dict]:
        from vllm import SamplingParams

        # vLLM's engine wants logprobs equal to the number of chosen ids (its server sets that itself)
        params = [SamplingParams(max_tokens=1, temperature=0.0, logprobs=len(c[:MAX_CHOSEN_IDS]),
                                 logprob_token_ids=list(c)[:MAX_CHOSEN_IDS]) for c in chosen]
        outs = self._run(prompts, params)
        return [self._values(o.outputs[0].logprobs[0], p.rid) for p, o in zip(prompts, outs, strict=True)]

    def echo_logprobs(self, prompts: Sequence[TokenPrompt]) -> list[float]:
        from vllm import SamplingParams

        outs = self._run(prompts, SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=0))
        values = []
        for p, o in zip(prompts, outs, strict=True):
            last = self._values(o.prompt_logprobs[-1], p.rid)
            if p.ids[-1] not in last:
                raise ServerError(f"{self.where()}: request {p.rid}: no log-probability for the prompt's last token")
            values.append(last[p.ids[-1]])
        return values

    def generate(self, prompts: Sequence[TokenPrompt], max_new_tokens: int, temperature: float, n: int,
                 seeds: Sequence[int]) -> list[list[str]]:
        from vllm import SamplingParams

        params = [SamplingParams(max_tokens=max_new_tokens, temperature=temperature, n=n, seed=seed) for seed in seeds]
        return [[c.text for c in o.outputs] for o in self._run(prompts, params)]
