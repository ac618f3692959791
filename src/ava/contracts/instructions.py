"""One instruction pair of the AVA behaviour dataset."""

from __future__ import annotations

from dataclasses import dataclass

from ava.contracts.pickling import fast_pickle

SPLITS = ("train", "test_advertiser", "test_temporal")


@fast_pickle
@dataclass(frozen=True, slots=True)
class InstructionSample:
    """A prompt/response pair and what it was made from.

    ``label`` is the normalised target of predictive (TAP) tasks ("female", "55-64",
    "Ohio|Iowa|Maine", a budget bucket) and None for generative ones; ``source_text`` is the
    source ad of pair tasks (TS, TC), used for the delta-perplexity metric.
    """

    id: str
    task: str
    family: str
    split: str
    prompt: str
    response: str
    advertiser: str
    ad_ids: tuple[str, ...]
    template_version: str
    label: str | None = None
    source_text: str | None = None
