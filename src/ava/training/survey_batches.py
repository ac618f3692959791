"""Batches for survey and mixed training: one source per optimiser step, padded as its loss reads it.

Survey rows are left-padded so the answer is every row's last position (the loss reads the LM
head there only); instruction rows are right-padded with labels -100 on padding, as TRL pads them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

IGNORE = -100


class StepSchedule(torch.utils.data.Sampler[int]):
    """Row indices such that every optimiser step's rows come from one source.

    Rows ``0..n_behaviour-1`` are instruction pairs, the rest survey examples. An epoch has
    ``n_steps`` steps of ``rows_per_step`` rows (batch x accumulation x processes);
    ``round(n_steps * survey_share)`` of them are survey steps, at positions drawn by a seeded
    permutation; each source is read through its own seeded shuffle, reshuffled when used up.
    Deterministic in (seed, epoch), so a resumed run skips to exactly the rows it would have read.
    """

    def __init__(self, n_behaviour: int, n_survey: int, rows_per_step: int, n_steps: int, survey_share: float,
                 seed: int) -> None:
        self.sizes, self.rows_per_step, self.n_steps = (n_behaviour, n_survey), rows_per_step, n_steps
        self.survey_share, self.seed, self.epoch = survey_share, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def sources(self, epoch: int) -> np.ndarray:
        """0 (behaviour) or 1 (survey) for each step of an epoch."""
        n_survey = round(self.n_steps * self.survey_share)
        kinds = np.array([1] * n_survey + [0] * (self.n_steps - n_survey), dtype=np.int64)
        return np.random.default_rng([self.seed, epoch, 0]).permutation(kinds)

    def __iter__(self) -> Any:
        streams = [self._stream(k) for k in (0, 1)]
        offset = (0, self.sizes[0])
        for kind in self.sources(self.epoch):
            for _ in range(self.rows_per_step):
                yield offset[kind] + next(streams[kind])

    def _stream(self, kind: int) -> Any:
        rng = np.random.default_rng([self.seed, self.epoch, 1 + kind])
        while self.sizes[kind]:
            yield from (int(i) for i in rng.permutation(self.sizes[kind]))

    def __len__(self) -> int:
        return self.n_steps * self.rows_per_step

    def counts(self, global_step: int) -> dict[str, int]:
        """Optimiser steps per source over the first ``global_step`` steps of the run."""
        done, epoch, survey = 0, 0, 0
        while done < global_step:
            take = min(self.n_steps, global_step - done)
            survey += int(self.sources(epoch)[:take].sum())
            done, epoch = done + take, epoch + 1
        return {"survey_steps": survey, "behaviour_steps": global_step - survey}


class TwoSources(torch.utils.data.Dataset):
    """Instruction rows (a tokenised ``datasets.Dataset``, or None) then survey rows, one index space."""

    def __init__(self, behaviour: Any, survey: Sequence[dict[str, Any]]) -> None:
        self.behaviour, self.survey = behaviour, list(survey)
        self.n_behaviour = len(behaviour) if behaviour is not None else 0

    def __len__(self) -> int:
        return self.n_behaviour + len(self.survey)

    def __getitem__(self, i: int) -> dict[str, Any]:
        if i < self.n_behaviour:
            row = self.behaviour[i]
            return {"kind": 0, "input_ids": row["input_ids"], "labels": row["labels"]}
        return self.survey[i - self.n_behaviour]


def collate(rows: Sequence[dict[str, Any]], pad_id: int) -> dict[str, torch.Tensor]:
    """One source's batch: survey rows left-padded with their letters and targets, instruction
    rows right-padded with labels (-100 on padding), as TRL pads them."""
    kinds = {r["kind"] for r in rows}
    if len(kinds) != 1:
        raise ValueError("a batch mixes survey and instruction rows; the step schedule gives each step one source")
    width = max(len(r["input_ids"]) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    if kinds == {0}:
        labels = torch.full((len(rows), width), IGNORE, dtype=torch.long)
        for i, r in enumerate(rows):
            n = len(r["input_ids"])
            ids[i, :n], mask[i, :n], labels[i, :n] = torch.tensor(r["input_ids"]), 1, torch.tensor(r["labels"])
        return {"input_ids": ids, "attention_mask": mask, "labels": labels}
    k = max(len(r["target"]) for r in rows)
    s = max(len(t) for r in rows for t in r["letter_ids"])
    letters = torch.full((len(rows), k, s), -1, dtype=torch.long)
    target = torch.zeros((len(rows), k), dtype=torch.float32)
    option_mask = torch.zeros((len(rows), k), dtype=torch.bool)
    for i, r in enumerate(rows):
        n = len(r["input_ids"])
        ids[i, width - n:], mask[i, width - n:] = torch.tensor(r["input_ids"]), 1
        for j, spelled in enumerate(r["letter_ids"]):
            letters[i, j, : len(spelled)] = torch.tensor(spelled)
        target[i, : len(r["target"])] = torch.tensor(r["target"], dtype=torch.float32)
        option_mask[i, : len(r["target"])] = True
    return {"input_ids": ids, "attention_mask": mask, "letter_ids": letters, "target": target,
            "option_mask": option_mask}
