"""The ``shuffled-audience`` control: the same instruction pairs with their audiences permuted.

Where: on the finished build's samples, not at render time from the ad records. Re-rendering
from the ads would mean re-running the build (ingest, keywords, pair mining) with a shuffle
inside it, and permuting an ad's signals *before* mining changes which pairs exist (TS and TC
pairs are chosen by their audiences), so the control would no longer train on the same pairs.
On the built samples every text, every pair, every sample id and the order (so the seeded
``train.limit`` sample picks the same pairs) stay exactly those of ``behaviour``; only the
audience slots move. The slots are found by matching each prompt against its own subtask's
versioned template (``data/instructions/templates.yaml``) and written back by formatting the
same template, and every sample is checked to round-trip to its original text before anything
is changed, so a template the matcher does not understand is refused rather than half-shuffled.

What moves, within each subtask (never across subtasks, so an age goes only where ages went):
TAP: the answer (``response`` and ``label``: the ad's gender, age group, top states, spend or
impressions bucket). TAG: the audience the content is written for. TS: the audience the ad
under-performs for. TC: the (source audience, target audience) of the pair, as one unit (so
a TC pair still asks to move between two different audiences). The multiset of audiences of
each subtask is preserved; which ad gets which is a seeded permutation.
"""

from __future__ import annotations

import re
import string
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from ava.contracts.instructions import InstructionSample
from ava.instructions.samples import ANSWER
from ava.instructions.templates import Templates, load_templates

SLOTS = {"TAG": ("audience",), "TS": ("audience",), "TC": ("source_audience", "target_audience")}
KIND = "instructions"


class ShuffleError(ValueError):
    """A sample whose prompt its template does not reproduce (a changed template, a damaged build)."""


def shuffle_audiences(samples: Sequence[InstructionSample], seed: int,
                      templates: Templates | None = None) -> list[InstructionSample]:
    """``samples`` in the same order with the audiences permuted within each subtask (seeded).

    Pure: the same samples and seed give the same result; nothing but the audience slots changes."""
    t = templates or load_templates()
    by_task: dict[str, list[int]] = defaultdict(list)
    for k, s in enumerate(samples):
        by_task[s.task].append(k)
    out = list(samples)
    for task in sorted(by_task):
        members = by_task[task]
        # one generator per subtask, seeded by the seed and the subtask's name: adding a subtask
        # to a build leaves the permutation of the others unchanged
        rng = np.random.default_rng([seed, *task.encode()])
        order = rng.permutation(len(members))
        family = task.split("-")[0]
        if family == "TAP":
            answers = [(samples[k].response, samples[k].label) for k in members]
            for k, j in zip(members, order, strict=True):
                out[k] = replace(samples[k], response=answers[j][0], label=answers[j][1])
            continue
        patterns = _patterns(t, task)
        parsed = [_parse(t, patterns, samples[k]) for k in members]
        slots = [tuple(fields[name] for name in SLOTS[family]) for _, fields in parsed]
        for (template, fields), k, j in zip(parsed, members, order, strict=True):
            fields = {**fields, **dict(zip(SLOTS[family], slots[j], strict=True))}
            out[k] = replace(samples[k], prompt=template.format(**fields))
    return out


def _parse(t: Templates, patterns: list[tuple[str, re.Pattern[str]]],
           sample: InstructionSample) -> tuple[str, dict[str, str]]:
    """The sample's prompt template and its fields, checked to give back the prompt exactly."""
    for template, pattern in patterns:
        m = pattern.fullmatch(sample.prompt)
        if m is not None:
            fields = dict(m.groupdict())
            if template.format(**fields) == sample.prompt:
                return template, fields
    raise ShuffleError(f"sample {sample.id} ({sample.task}): its prompt does not match the {sample.task} template "
                       f"of templates {t.version} (built with template version {sample.template_version}); "
                       "rebuild the instruction data with this ava")


def _patterns(t: Templates, task: str) -> list[tuple[str, re.Pattern[str]]]:
    """Whole-prompt templates of a pair/generation subtask (its lines joined as the build joins them),
    each with a regex whose groups are the template's fields. TAG's ad facts and keywords lines
    vary in number: one ``middle`` field stands for them (it holds no audience)."""
    spec = t.tasks[task]
    family = task.split("-")[0]
    if family == "TS":
        lines = [[spec["instruction"], spec["current"]]]
    elif family == "TC":
        lines = [[spec["instruction"], spec["source"], spec["ask"]]]
    else:
        lines = [[spec[key], "{middle}", spec["ask"]] for key in ("instruction", "instruction_no_where")]
    templates = ["\n".join([*parts, ANSWER]) for parts in lines]
    return [(template, _regex(template)) for template in templates]


def _regex(template: str) -> re.Pattern[str]:
    out, seen = [], set()
    for literal, name, _, _ in string.Formatter().parse(template):
        out.append(re.escape(literal))
        if name is None:
            continue
        out.append(f"(?P={name})" if name in seen else f"(?P<{name}>.*?)")
        seen.add(name)
    return re.compile("".join(out), re.DOTALL)


def write_shuffled_build(build: Path, out: Path, seed: int) -> dict[str, Any]:
    """A build folder at ``out`` whose train split is ``build``'s with the audiences shuffled by
    ``seed``: what ``ava train`` reads (``manifest.json``, ``data/train-*.parquet``), bound to the
    source build's manifest and the seed. Only the train split is written (nothing evaluates a
    shuffled split: the experiment evaluates on the source build). Returns the manifest."""
    import hashlib

    from ava.instructions.dataset import DatasetLayout, manifest_sha256, read_manifest, read_split, write_parquet
    from ava.io import write_json
    from ava.runs import Binding, Output, start_run

    source = read_manifest(build)
    samples = shuffle_audiences(list(read_split(build, "train")), seed)
    layout = DatasetLayout(out)
    binding = Binding(inputs=manifest_sha256(build), options={"audience_shuffle_seed": seed})
    manifest = {**source, "totals": {"train": len(samples)},
                "audience_shuffle": {"seed": seed, "source_manifest_sha256": manifest_sha256(build),
                                     "what": "audiences permuted within each subtask (ava.experiments.shuffle)"}}
    with start_run(Output(out, folder=True), KIND, binding, owned=("data", "manifest.json"), restart=True):
        write_parquet(layout.part("train", 0, 1), samples)
        manifest["audience_shuffle"]["train_sha256"] = hashlib.sha256(
            layout.part("train", 0, 1).read_bytes()).hexdigest()
        write_json(layout.manifest, manifest)
    return manifest
