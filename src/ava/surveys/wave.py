"""Process one wave file: questions, demographics, weights -> per-group answer tallies.

Runs in a worker process: reads the metadata once, then only the needed columns (``usecols``),
and tallies every question with ``numpy.bincount`` (one call per attribute), so the result is the
same whichever worker ran it and in whatever order.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyreadstat

from ava.io import file_sha256
from ava.surveys.demographics import group_index, map_demographics
from ava.surveys.discovery import WaveFile
from ava.surveys.questions import select_questions
from ava.surveys.rules import demographic_rules, question_rules
from ava.surveys.weights import choose_weight


@dataclass
class RawQuestion:
    """All labelled options of one question column with their tallies for the 61 groups.

    ``counts[g, k]`` respondents of group g answering code k, ``wsums[g, k]`` their summed weights
    (group order: ``DemographicRules.group_keys()``).
    """

    column: str
    wave: str
    text: str
    codes: tuple[float, ...]
    labels: tuple[str, ...]
    substantive: tuple[bool, ...]
    counts: np.ndarray
    wsums: np.ndarray
    unlabelled: int  # answers with a code that has no value label (dropped)


@dataclass
class WaveResult:
    wave: str
    path: str
    folder: str
    kind: str
    sha256: str = ""
    size: int = 0
    n_rows: int = 0
    n_columns: int = 0
    weight: dict = field(default_factory=dict)
    demographics: dict = field(default_factory=dict)
    unmapped_attributes: list[str] = field(default_factory=list)
    unmappable: list[str] = field(default_factory=list)  # demographic columns no label of which maps
    questions: list[RawQuestion] = field(default_factory=list)
    skipped_columns: dict[str, str] = field(default_factory=dict)
    error: str | None = None


def process_wave(wf: WaveFile, weight: str | None = None) -> WaveResult:
    """Never raises: a broken file comes back with ``error`` set so the build goes on. ``weight``: the
    column named with ``--weight`` for this wave, else the rules choose (:func:`choose_weight`)."""
    res = WaveResult(wave=wf.wave, path=str(wf.path), folder=wf.folder, kind=wf.kind)
    try:
        res.size = wf.path.stat().st_size
        res.sha256 = file_sha256(wf.path)
        _process(wf, res, weight)
    except Exception as exc:  # noqa: BLE001 - any failure of one file is reported, not fatal
        last = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
        where = f" (at {Path(last.filename).name}:{last.lineno})" if last else ""
        reason = " ".join(str(exc).split())  # one line, whatever the reader put in its message
        res.error = (f"{wf.path}: cannot read as an SPSS .sav file: {type(exc).__name__}: {reason}{where}; "
                     "re-download the wave or remove it")
        res.questions = []
    return res


def _process(wf: WaveFile, res: WaveResult, named_weight: str | None) -> None:
    qrules, drules = question_rules(), demographic_rules()
    _, meta = pyreadstat.read_sav(str(wf.path), metadataonly=True)
    res.n_rows, res.n_columns = int(meta.number_rows or 0), len(meta.column_names)
    questions, skipped = select_questions(meta, qrules)
    mappings = map_demographics(meta, drules, qrules.is_non_substantive, wf.wave)
    demo_cols = {c for m in mappings for c in m.columns()}
    for q in [q for q in questions if q.column in demo_cols]:
        skipped[q.column] = "demographic column (used for groups)"
    questions = [q for q in questions if q.column not in demo_cols]
    weight = choose_weight(list(meta.column_names), wf.wave, meta.column_names_to_labels, named_weight)
    res.weight = weight.report()
    res.demographics = {m.attribute: m.report() for m in mappings}
    res.unmapped_attributes = [m.attribute for m in mappings if m.column is None]
    res.unmappable = [f"{m.attribute}: no value label of {m.column} names a {m.attribute} group (labels: "
                      f"{', '.join(m.unmapped_labels) or 'none'})" for m in mappings if m.unmappable]
    if all(m.column is None for m in mappings):
        res.unmappable.append("no demographic column of any attribute (" + ", ".join(m.attribute for m in mappings)
                              + "): every group would be empty")
    if not questions:
        res.skipped_columns = skipped
        return
    usecols = [q.column for q in questions] + [c for m in mappings for c in m.columns()]
    if weight.column:
        usecols.append(weight.column)
    usecols = list(dict.fromkeys(usecols))
    frame, _ = pyreadstat.read_sav(str(wf.path), usecols=usecols, apply_value_formats=False,
                                   user_missing=False)
    n = len(frame)
    res.n_rows = n
    if weight.column:
        w = frame[weight.column].to_numpy(dtype=np.float64, na_value=np.nan)
        w = np.where(np.isfinite(w) & (w > 0), w, 0.0)
        # Respondents without a positive weight count in `n` but not in any distribution: said per wave.
        res.weight["respondents_weighted"] = int((w > 0).sum())
    else:
        w = np.ones(n)
    group_keys = drules.group_keys()
    offsets, gidx = [], []
    offset = 1  # row 0 is Overall
    for m in mappings:
        idx, stats = group_index(m, frame)
        gidx.append(idx)
        res.demographics[m.attribute].update(stats)
        offsets.append(offset)
        offset += len(m.groups)
    assert offset == len(group_keys)
    for q in questions:
        raw = frame[q.column].to_numpy(dtype=np.float64, na_value=np.nan)
        answered = ~np.isnan(raw)
        codes = np.asarray(q.codes)
        pos = np.searchsorted(codes, raw)
        pos_c = np.clip(pos, 0, len(codes) - 1)
        labelled = answered & (codes[pos_c] == raw)
        n_answered = int(answered.sum())
        unlabelled = n_answered - int(labelled.sum())
        if n_answered == 0:
            skipped[q.column] = "no respondent answered"
            continue
        if unlabelled > qrules.max_unlabelled_share * n_answered:
            skipped[q.column] = f"numeric: {unlabelled} of {n_answered} answers have no value label"
            continue
        k = len(codes)
        opt = pos_c[labelled]
        wl = w[labelled]
        counts = np.zeros((len(group_keys), k), dtype=np.int64)
        wsums = np.zeros((len(group_keys), k), dtype=np.float64)
        counts[0] = np.bincount(opt, minlength=k)
        wsums[0] = np.bincount(opt, weights=wl, minlength=k)
        for m, off, gi in zip(mappings, offsets, gidx, strict=True):
            g = gi[labelled]
            sel = g >= 0
            flat = g[sel] * k + opt[sel]
            size = len(m.groups) * k
            counts[off:off + len(m.groups)] = np.bincount(flat, minlength=size).reshape(len(m.groups), k)
            wsums[off:off + len(m.groups)] = np.bincount(flat, weights=wl[sel], minlength=size).reshape(
                len(m.groups), k)
        res.questions.append(RawQuestion(q.column, wf.wave, q.text, q.codes, q.labels, q.substantive,
                                         counts, wsums, unlabelled))
    res.skipped_columns = skipped
