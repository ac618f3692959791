"""The letter-scoring engine: one forward pass per prompt, batched, prefix-cached, exact.

For each request it returns the log-probability of every option letter under the
full-vocabulary softmax at the last prompt position (both spellings, logsumexp-combined).

Why it is fast:
* one forward per prompt, not per option; only the last position's logits are computed;
* batches are sorted by length (little padding) and sized by a token budget;
* requests sharing leading segments (a persona, a chat header, an instruction block)
  compute that prefix's key/value cache once and reuse it for all of them.
Why it is exact: every path tokenises a prompt as the concatenation of its separately
tokenised segments, so batched, cached and reference scores see the same tokens.
"""

from __future__ import annotations

import copy
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import torch

from ava.contracts.scoring import ScoredItem, ScoreRequest
from ava.models.letters import spelling_token_ids


@dataclass(frozen=True)
class EngineConfig:
    """Batching knobs; ``None`` picks a default for the device (CPU small, CUDA large)."""

    max_batch_tokens: int | None = None
    max_batch_size: int | None = None
    min_prefix_tokens: int = 8
    use_prefix_cache: bool = True
    chat: bool = False


class LetterEngine:
    """Scores :class:`ScoreRequest` s with a causal LM and its tokenizer."""

    def __init__(self, model: Any, tokenizer: Any, config: EngineConfig | None = None) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.config = config or EngineConfig()
        self.device = next(model.parameters()).device
        on_gpu = self.device.type == "cuda"
        self.max_batch_tokens = self.config.max_batch_tokens or (65536 if on_gpu else 512)
        self.max_batch_size = self.config.max_batch_size or (256 if on_gpu else 32)
        self.pad_id = tokenizer.pad_token_id
        if self.pad_id is None:
            self.pad_id = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else 0
        self._special_prefix = self._detect_special_prefix()
        self._chat_frame = self._detect_chat_frame() if self.config.chat else None
        self._encode = lru_cache(maxsize=200_000)(self._encode_uncached)
        self._letters: dict[str, tuple[int, ...]] = {}

    # -- tokenisation -------------------------------------------------------------------
    def _detect_special_prefix(self) -> list[int]:
        """Tokens the tokenizer puts before any text (e.g. BOS), added once per prompt."""
        with_special = self.tokenizer("a").input_ids
        without = self.tokenizer("a", add_special_tokens=False).input_ids
        n = len(with_special) - len(without)
        return list(with_special[:n]) if n > 0 and with_special[n:] == without else []

    def _detect_chat_frame(self) -> tuple[str, str]:
        """The chat template's text before and after a user message (with generation prompt)."""
        if not getattr(self.tokenizer, "chat_template", None):
            from ava.models.loading import ModelError

            raise ModelError("this model has no chat template; score without --chat")
        marker = "\u0000AVA-CONTENT\u0000"
        text = self.tokenizer.apply_chat_template(
            [{"role": "user", "content": marker}], tokenize=False, add_generation_prompt=True
        )
        head, tail = text.split(marker)
        return head, tail

    def _encode_uncached(self, segment: str) -> tuple[int, ...]:
        return tuple(self.tokenizer.encode(segment, add_special_tokens=False))

    def segments_of(self, request: ScoreRequest) -> tuple[str, ...]:
        """The segments actually fed to the model (chat framing applied when asked).

        In chat mode every segment but the last goes into the user turn and the last one,
        the answer cue, opens the assistant turn.
        """
        if self._chat_frame is None:
            return request.segments
        head, tail = self._chat_frame
        *body, cue = request.segments
        if not body:
            return (head, cue, tail)
        return (head, *body, tail, cue)

    def token_segments(self, request: ScoreRequest) -> list[tuple[int, ...]]:
        segments = self.segments_of(request)
        prefix = self._special_prefix
        if (
            self._chat_frame is not None
            and self.tokenizer.bos_token
            and segments[0].startswith(self.tokenizer.bos_token)
        ):
            prefix = []
        return [tuple(prefix), *(self._encode(s) for s in segments)]

    def encode(self, request: ScoreRequest) -> list[int]:
        """The full token sequence of a request's prompt."""
        return [t for seg in self.token_segments(request) for t in seg]

    def letter_ids(self, letter: str) -> tuple[int, ...]:
        if letter not in self._letters:
            self._letters[letter] = spelling_token_ids(self.tokenizer, letter)
        return self._letters[letter]

    # -- planning -----------------------------------------------------------------------
    def _plan(self, tokenised: list[list[tuple[int, ...]]]) -> tuple[dict[tuple, list[int]], list[int]]:
        """Group requests by their longest shared leading segments worth caching."""
        if not self.config.use_prefix_cache:
            return {}, list(range(len(tokenised)))
        counts: Counter[tuple] = Counter()
        for segs in tokenised:
            for k in range(2, len(segs)):  # segs[0] is the special prefix; keep >= 1 segment as suffix
                counts[tuple(segs[:k])] += 1
        groups: dict[tuple, list[int]] = defaultdict(list)
        plain: list[int] = []
        for i, segs in enumerate(tokenised):
            key = None
            for k in range(len(segs) - 1, 1, -1):
                candidate = tuple(segs[:k])
                if counts[candidate] >= 2 and sum(map(len, candidate)) >= self.config.min_prefix_tokens:
                    key = candidate
                    break
            suffix_len = sum(map(len, segs[len(key) :])) if key else 0
            if key is not None and suffix_len > 0:
                groups[key].append(i)
            else:
                plain.append(i)
        # a "group" of one shares nothing: score it plainly
        for key in [k for k, members in groups.items() if len(members) < 2]:
            plain.extend(groups.pop(key))
        return groups, plain

    def _batches(self, order: list[int], lengths: list[int]) -> list[list[int]]:
        """Greedy batches of requests sorted longest first, under the token and size budgets."""
        order = sorted(order, key=lambda i: (-lengths[i], i))
        batches: list[list[int]] = []
        current: list[int] = []
        for i in order:
            width = lengths[current[0]] if current else lengths[i]
            if current and ((len(current) + 1) * width > self.max_batch_tokens or len(current) >= self.max_batch_size):
                batches.append(current)
                current = []
            current.append(i)
        if current:
            batches.append(current)
        return batches

    # -- forward passes -----------------------------------------------------------------
    def _last_logprobs(self, rows: list[list[int]], past: Any = None, prefix_len: int = 0) -> torch.Tensor:
        """Full-vocabulary log-softmax at each row's last token (rows left-padded)."""
        width = max(map(len, rows))
        ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for r, row in enumerate(rows):
            ids[r, width - len(row) :] = torch.tensor(row, dtype=torch.long)
            mask[r, width - len(row) :] = 1
        positions = (mask.cumsum(-1) - 1).clamp(min=0) + prefix_len
        if past is not None:
            mask = torch.cat([torch.ones((len(rows), prefix_len), dtype=torch.long), mask], dim=1)
        out = self.model(
            input_ids=ids.to(self.device),
            attention_mask=mask.to(self.device),
            position_ids=positions.to(self.device),
            past_key_values=past,
            use_cache=past is not None,
            logits_to_keep=1,
        )
        return torch.log_softmax(out.logits[:, -1, :].float(), dim=-1).cpu()

    def _run_batch(self, rows: list[list[int]], past: Any = None, prefix_len: int = 0) -> torch.Tensor:
        """Forward a batch, halving it on CUDA out-of-memory."""
        try:
            cache = None
            if past is not None:
                cache = copy.deepcopy(past)
                cache.batch_repeat_interleave(len(rows))
            return self._last_logprobs(rows, cache, prefix_len)
        except torch.cuda.OutOfMemoryError:
            if len(rows) == 1:
                raise
            torch.cuda.empty_cache()
            self.max_batch_tokens = max(1, self.max_batch_tokens // 2)
            half = len(rows) // 2
            return torch.cat(
                [self._run_batch(rows[:half], past, prefix_len), self._run_batch(rows[half:], past, prefix_len)]
            )

    def _prefix_cache(self, prefix: list[int]) -> Any:
        ids = torch.tensor([prefix], dtype=torch.long, device=self.device)
        return self.model(input_ids=ids, use_cache=True, logits_to_keep=1).past_key_values

    # -- public -------------------------------------------------------------------------
    @torch.inference_mode()
    def score(self, requests: Sequence[ScoreRequest], progress: bool = False) -> list[ScoredItem]:
        """Score requests; results come back in input order."""
        letter_ids = [[self.letter_ids(letter) for letter in r.options] for r in requests]
        tokenised = [self.token_segments(r) for r in requests]
        groups, plain = self._plan(tokenised)
        results: list[ScoredItem | None] = [None] * len(requests)
        bar = _progress(len(requests), progress)

        def emit(indices: list[int], logprobs: torch.Tensor) -> None:
            for row, i in enumerate(indices):
                values = tuple(float(torch.logsumexp(logprobs[row, list(ids)], dim=0)) for ids in letter_ids[i])
                results[i] = ScoredItem(requests[i].id, values)
            bar.update(len(indices))

        full = {i: [t for seg in tokenised[i] for t in seg] for i in plain}
        lengths = {i: len(v) for i, v in full.items()}
        for batch in self._batches(plain, _dense(lengths, len(requests))):
            emit(batch, self._run_batch([full[i] for i in batch]))
        for key, members in groups.items():
            prefix = [t for seg in key for t in seg]
            past = self._prefix_cache(prefix)
            suffix = {i: [t for seg in tokenised[i][len(key) :] for t in seg] for i in members}
            lens = _dense({i: len(s) for i, s in suffix.items()}, len(requests))
            for batch in self._batches(members, lens):
                emit(batch, self._run_batch([suffix[i] for i in batch], past, len(prefix)))
        bar.close()
        return [r for r in results if r is not None]


def _dense(lengths: dict[int, int], n: int) -> list[int]:
    out = [0] * n
    for i, v in lengths.items():
        out[i] = v
    return out


def _progress(total: int, enabled: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, disable=not enabled, unit="prompt", desc="scoring", dynamic_ncols=True)
