"""The letter-scoring engine: one forward pass per prompt, batched, prefix-cached, exact.

For each request it returns the log-probability of every option letter under the
full-vocabulary softmax at the last prompt position (both spellings, logsumexp-combined).

Why it is fast:
* one forward per prompt, not per option; only the last position's logits are computed;
* every run of tokens that several prompts share (a persona, a battery's question stem, an
  answer-option block, a chat header) is computed once: the prompts form a prefix tree
  (:mod:`ava.models.prefix_tree`) whose nodes run wave by wave, each after its parent's
  key/value cache, in batches sorted by length and sized by a token budget.
Why it is exact: a prompt is the concatenation of its segments, tokenised whole as
``tokenizer(text)`` would (:mod:`ava.models.encoding`), in every path, so batched, cached and
reference scores see the tokens any other tool would give the model; padding is masked and
positions count real tokens only, so a row sees exactly its own prompt.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import torch
from transformers.cache_utils import DynamicCache, DynamicLayer
from transformers.modeling_outputs import CausalLMOutputWithPast

from ava.contracts.scoring import ScoredItem, ScoreRequest
from ava.models.encoding import Encoded, PromptEncoder, context_window
from ava.models.letters import spelling_token_ids
from ava.models.prefix_tree import Node, build_tree, chunks_by_tokens
from ava.models.threads import cpu_threads


@dataclass(frozen=True)
class EngineConfig:
    """Batching knobs; ``None`` picks a default for the device (CPU small, CUDA large)."""

    max_batch_tokens: int | None = None
    max_batch_size: int | None = None
    min_prefix_tokens: int = 8  # a shared run saving fewer token computations is recomputed
    use_prefix_cache: bool = True
    max_cache_mb: float | None = None  # key/value memory one chunk of the prefix tree may hold
    chat: bool = False
    truncate: str | None = None  # "left": cut prompts longer than the context window (else refused)
    threads: int | None = None  # CPU threads; None: as many cores as other processes leave free


class LetterEngine:
    """Scores :class:`ScoreRequest` s with a causal LM and its tokenizer."""

    def __init__(self, model: Any, tokenizer: Any, config: EngineConfig | None = None) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.config = config or EngineConfig()
        self.device = next(model.parameters()).device
        on_gpu = self.device.type == "cuda"
        self.max_batch_tokens = self.config.max_batch_tokens or (65536 if on_gpu else 512)
        self.max_batch_size = self.config.max_batch_size or (256 if on_gpu else 64)
        self.max_cache_bytes = int((self.config.max_cache_mb or (16384 if on_gpu else 2048)) * 2**20)
        self.pad_id = tokenizer.pad_token_id
        if self.pad_id is None:
            self.pad_id = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else 0
        self.encoder = PromptEncoder(tokenizer, self.config.chat, context_window(model), self.config.truncate)
        self._letters: dict[str, tuple[int, ...]] = {}

    # -- tokenisation -------------------------------------------------------------------
    def prompt_text(self, request: ScoreRequest) -> str:
        """The exact string the model reads for a request (chat template applied when asked)."""
        return self.encoder.text(request)

    def encode(self, request: ScoreRequest) -> list[int]:
        """The canonical token sequence of a request's prompt (``tokenizer(text)``, whole)."""
        return list(self.encoder.encode([request])[0].ids)

    def letter_ids(self, letter: str) -> tuple[int, ...]:
        """The tokens spelling ``letter`` after a neutral cue (``":"``); the tokens read for a
        particular request are those the tokenizer appends to its prompt (``Encoded.letters``)."""
        if letter not in self._letters:
            self._letters[letter] = spelling_token_ids(self.tokenizer, letter)
        return self._letters[letter]

    # -- planning -----------------------------------------------------------------------
    def plan(self, requests: Sequence[ScoreRequest], encoded: Sequence[Encoded] | None = None) -> list[Node]:
        """The prefix trees (one per memory-bounded chunk) that :meth:`score` executes."""
        seqs = [e.ids for e in encoded or self.encoder.encode(requests)]
        reuses_cache, kv_bytes_per_token = self._cache_layout if self.config.use_prefix_cache else (False, 1)
        if not reuses_cache:
            return [build_tree(seqs, range(len(seqs)), share=False)]
        max_tokens = max(1, self.max_cache_bytes // kv_bytes_per_token)
        return [
            build_tree(seqs, chunk, min_saving=self.config.min_prefix_tokens)
            for chunk in chunks_by_tokens(seqs, max_tokens)
        ]

    @cached_property
    def _cache_layout(self) -> tuple[bool, int]:
        """(whether the model's key/value cache is the plain kind this engine can slice and pad,
        its bytes per token). Plain means full attention in every layer; sliding-window or
        recurrent caches are scored flat. Found once, from a two-token forward."""
        ids = torch.tensor([[self.pad_id, self.pad_id]], device=self.device)
        with torch.inference_mode():
            cache = cache_of(self.model(input_ids=ids, use_cache=True, logits_to_keep=1))
        layers = getattr(cache, "layers", None) or []
        plain = bool(layers) and all(type(layer) is DynamicLayer for layer in layers)
        per_token = sum(2 * layer.keys[0, :, 0].numel() * layer.keys.element_size() for layer in layers)
        return plain, max(1, per_token)

    def _wave_batches(self, wave: list[tuple[Node, Prefix | None]]) -> list[list[tuple[Node, Prefix | None]]]:
        """Greedy batches of a wave's rows, longest span first, under the token and size budgets."""
        order = sorted(wave, key=lambda row: (-len(row[0].span), -(row[1].length if row[1] else 0)))
        batches: list[list[tuple[Node, Prefix | None]]] = []
        current: list[tuple[Node, Prefix | None]] = []
        for row in order:
            width = len(current[0][0].span) if current else len(row[0].span)
            full = (len(current) + 1) * width > self.max_batch_tokens or len(current) >= self.max_batch_size
            if current and full:
                batches.append(current)
                current = []
            current.append(row)
        if current:
            batches.append(current)
        return batches

    # -- forward passes -----------------------------------------------------------------
    def _forward(self, batch: list[tuple[Node, Prefix | None]]) -> tuple[torch.Tensor, list[Prefix | None]]:
        """One forward over a batch of tree nodes, each after its own parent's cached prefix.

        Rows are left-padded twice: the parents' caches to the longest one, the nodes' tokens
        to the longest span; the attention mask hides both paddings and position ids count real
        tokens only, so every row sees exactly its own prompt. Returns the full-vocabulary
        log-softmax at each row's last token and, for rows with children, the node's own cache
        with the padding cut out.
        """
        spans = [node.span for node, _ in batch]
        past_lens = [past.length if past else 0 for _, past in batch]
        rows, width, plen = len(batch), max(map(len, spans)), max(past_lens)
        ids = torch.full((rows, width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((rows, plen + width), dtype=torch.long)
        for r, span in enumerate(spans):
            ids[r, width - len(span) :] = torch.tensor(span, dtype=torch.long)
            mask[r, plen - past_lens[r] : plen] = 1
            mask[r, plen + width - len(span) :] = 1
        positions = (mask[:, plen:].cumsum(-1) - 1).clamp(min=0) + torch.tensor(past_lens)[:, None]
        cache = _padded_cache(batch, plen) if plen else None
        keep = any(node.children for node, _ in batch)
        out = self.model(
            input_ids=ids.to(self.device),
            attention_mask=mask.to(self.device),
            position_ids=positions.to(self.device),
            **{CACHE_ARG: cache},
            use_cache=keep,
            logits_to_keep=1,
        )
        logprobs = torch.log_softmax(out.logits[:, -1, :].float(), dim=-1).cpu()
        children: list[Prefix | None] = [None] * rows
        if keep:
            layers = cache_of(out).layers
            for r, (node, _) in enumerate(batch):
                if node.children:
                    cut = [slice(plen - past_lens[r], plen), slice(plen + width - len(node.span), plen + width)]
                    keys = [torch.cat([lay.keys[r : r + 1, :, c] for c in cut], dim=2) for lay in layers]
                    values = [torch.cat([lay.values[r : r + 1, :, c] for c in cut], dim=2) for lay in layers]
                    children[r] = Prefix(keys, values, past_lens[r] + len(node.span))
        return logprobs, children

    def _forward_halving(self, batch: list[tuple[Node, Prefix | None]]) -> tuple[torch.Tensor, list[Prefix | None]]:
        """:meth:`_forward`, halving the batch (and the token budget) on CUDA out-of-memory."""
        try:
            return self._forward(batch)
        except torch.cuda.OutOfMemoryError:
            if len(batch) == 1:
                raise
        # Retry outside the ``except`` block: inside it the exception's traceback keeps the failed
        # forward's activations alive, so empty_cache() could not return their memory.
        torch.cuda.empty_cache()
        self.max_batch_tokens = max(1, self.max_batch_tokens // 2)
        half = len(batch) // 2
        (a, ca), (b, cb) = self._forward_halving(batch[:half]), self._forward_halving(batch[half:])
        return torch.cat([a, b]), ca + cb

    def _execute(self, root: Node, adjust_threads: Callable[[], None]) -> Iterator[tuple[Node, torch.Tensor]]:
        """Run a plan wave by wave (all nodes whose parents are done form one wave), yielding
        each node that ends requests with its last-position log-probs. A wave's caches are
        dropped once its children have run, so memory holds at most two levels. Before each
        forward the thread count follows the cores other processes leave free."""
        wave: list[tuple[Node, Prefix | None]] = [(child, None) for child in root.children]
        while wave:
            following: list[tuple[Node, Prefix | None]] = []
            for batch in self._wave_batches(wave):
                adjust_threads()
                logprobs, caches = self._forward_halving(batch)
                for r, ((node, _), cache) in enumerate(zip(batch, caches, strict=True)):
                    if node.ends:
                        yield node, logprobs[r]
                    following.extend((child, cache) for child in node.children)
            wave = following

    # -- public -------------------------------------------------------------------------
    @torch.inference_mode()
    def score(self, requests: Sequence[ScoreRequest], progress: bool = False) -> list[ScoredItem]:
        """Score requests; results come back in input order."""
        encoded = self.encoder.encode(requests)
        results: list[ScoredItem | None] = [None] * len(requests)
        bar = _progress(len(requests), progress)
        with cpu_threads(self.device, self.config.threads) as adjust_threads:
            for root in self.plan(requests, encoded):
                for node, logprobs in self._execute(root, adjust_threads):
                    for i in node.ends:
                        values = tuple(float(torch.logsumexp(logprobs[list(ids)], dim=0)) for ids in encoded[i].letters)
                        results[i] = ScoredItem(requests[i].id, values)
                    bar.update(len(node.ends))
        bar.close()
        return [r for r in results if r is not None]


# transformers 5.x renamed ``past_key_values`` to ``cache`` (the old name warns); use the one it has
CACHE_ARG = "cache" if "cache" in getattr(CausalLMOutputWithPast, "__dataclass_fields__", {}) else "past_key_values"


def cache_of(output: Any) -> Any:
    return getattr(output, CACHE_ARG)


@dataclass
class Prefix:
    """A tree node's key/value cache (batch 1, one tensor per layer) and its token count."""

    keys: list[torch.Tensor]
    values: list[torch.Tensor]
    length: int


def _padded_cache(batch: list[tuple[Node, Prefix | None]], width: int) -> DynamicCache:
    """The rows' parent caches, left-padded with zeros to ``width`` positions (masked out).

    Each layer's padded cache is built where that layer's cache already lives (``new_zeros``):
    with ``device_map="auto"`` the layers sit on different GPUs, and moving them all to the
    input device would make every layer past the first copy its cache back across devices."""
    template = next(past for _, past in batch if past is not None)
    data = []
    for layer in range(len(template.keys)):
        k0, v0 = template.keys[layer], template.values[layer]
        keys = k0.new_zeros((len(batch), k0.shape[1], width, k0.shape[3]))
        values = v0.new_zeros((len(batch), v0.shape[1], width, v0.shape[3]))
        for r, (_, past) in enumerate(batch):
            if past is not None:
                keys[r, :, width - past.length :] = past.keys[layer][0]
                values[r, :, width - past.length :] = past.values[layer][0]
        data.append((keys, values))
    return DynamicCache(ddp_cache_data=data)


def _progress(total: int, enabled: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, disable=not enabled, unit="prompt", desc="scoring", dynamic_ncols=True)
