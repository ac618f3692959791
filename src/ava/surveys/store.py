"""Benchmark artifacts on disk: two Parquet tables per benchmark, readable by pandas and ``datasets``.

``questions.parquet``: one row per question. ``distributions.parquet``: one row per question x
group (``attribute``, ``group``). Written with pyarrow directly (no pandas metadata, fixed
compression, sorted rows) so the same questions give byte-identical files.
"""

from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ava.contracts.surveys import OVERALL, GroupDistribution, SurveyQuestion
from ava.io import atomic_write
from ava.surveys.errors import SurveyDataError

QUESTIONS, DISTRIBUTIONS = "questions.parquet", "distributions.parquet"
KIND = "surveys"
"""The run kind of a survey build's record (``ava.surveys.build`` writes it)."""
BENCHMARKS = ("opinionqa", "opinionqa-xl")


@dataclass(frozen=True)
class SurveyBuild:
    """The paths of a survey build (``ava data build-surveys --out``): every reader and writer goes
    through here. ``<benchmark>/questions.parquet`` and ``distributions.parquet`` per benchmark,
    ``manifest.json`` (the data's description), ``README.md`` (the dataset card), ``.cache/`` (one
    file per processed wave, so a rerun reuses finished waves) and the run record ``run.json``."""

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    def benchmark(self, name: str) -> Path:
        return self.root / name

    def questions(self, name: str) -> Path:
        return self.root / name / QUESTIONS

    @property
    def manifest(self) -> Path:
        return self.root / "manifest.json"

    @property
    def card(self) -> Path:
        return self.root / "README.md"

    @property
    def cache(self) -> Path:
        return self.root / ".cache"

    @property
    def record(self) -> Path:
        return self.root / "run.json"

    OUTPUT_DIRS = (*BENCHMARKS, ".cache")
    OUTPUT_FILES = ("manifest.json", "README.md")
    OWNED = (*OUTPUT_DIRS, *OUTPUT_FILES)
    """What a build writes besides its record: refused without a record, removed by ``--restart``."""

_Q_SCHEMA = pa.schema([
    ("key", pa.string()), ("wave", pa.string()), ("column", pa.string()), ("text", pa.string()),
    ("options", pa.list_(pa.string())), ("ordinals", pa.list_(pa.float64())),
    ("refusal_options", pa.list_(pa.string())), ("text_source", pa.string()),
    ("ordinal_source", pa.string()), ("weighted", pa.bool_()), ("topic", pa.string()),
    ("date", pa.string()), ("tags", pa.list_(pa.string())),
])


SCALE = 10_000
"""Compact copies store probabilities and refusal rates as integers in units of 1/SCALE."""


def _d_schema(compact: bool, counts: bool) -> pa.Schema:
    fields = [("key", pa.string()), ("attribute", pa.string()), ("group", pa.string())]
    if compact:
        fields += [("distribution_e4", pa.list_(pa.uint16())), ("refusal_rate_e4", pa.uint16()),
                   ("n", pa.int32()), ("weighted_n_e2", pa.int64())]
    else:
        fields += [("distribution", pa.list_(pa.float64())), ("refusal_rate", pa.float64()),
                   ("n", pa.int32()), ("weighted_n", pa.float64())]
    if counts:
        fields.append(("counts", pa.list_(pa.int32())))
    return pa.schema(fields)


def _write_table(table: pa.Table, path: Path, level: int) -> None:
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd", compression_level=level, use_dictionary=True,
                   write_statistics=False)
    with atomic_write(path, "wb") as fh:
        fh.write(buf.getvalue())
    os.chmod(path, 0o644)


def _list_array(lengths: list[int], values: np.ndarray) -> pa.ListArray:
    offsets = np.zeros(len(lengths) + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(values))


def write_benchmark(directory: str | Path, questions: list[SurveyQuestion], compact: bool = False,
                    counts: bool = True) -> None:
    """Write both tables.

    ``compact`` (the bundled copy) stores probabilities and refusal rates as integers of 1/10,000
    (renormalised on reading; absolute error about 1e-4) and weighted counts to 0.01;
    ``counts=False`` drops the unweighted per-option counts. Full builds keep float64 and counts.
    """
    directory = Path(directory)
    schema = _d_schema(compact, counts)
    qcols: dict[str, list] = {f.name: [] for f in _Q_SCHEMA}
    for q in questions:
        for name in qcols:
            value = getattr(q, name)
            qcols[name].append(list(value) if isinstance(value, tuple) else value)
    groups = [(q.key, g) for q in questions for g in q.groups]
    dist_flat = [x for _, g in groups for x in g.distribution]
    dist_len = [len(g.distribution) for _, g in groups]
    refusal = np.array([g.refusal_rate for _, g in groups], dtype=np.float64)
    weighted_n = np.array([g.weighted_n for _, g in groups], dtype=np.float64)
    dcols: dict[str, object] = {
        "key": [k for k, _ in groups], "attribute": [g.attribute for _, g in groups],
        "group": [g.group for _, g in groups], "n": [g.n for _, g in groups],
    }
    if compact:
        quantised = np.rint(np.asarray(dist_flat, dtype=np.float64) * SCALE).astype(np.uint16)
        dcols["distribution_e4"] = _list_array(dist_len, quantised)
        dcols["refusal_rate_e4"] = np.rint(refusal * SCALE).astype(np.uint16)
        dcols["weighted_n_e2"] = np.rint(weighted_n * 100).astype(np.int64)
    else:
        dcols["distribution"] = _list_array(dist_len, np.asarray(dist_flat, dtype=np.float64))
        dcols["refusal_rate"] = refusal
        dcols["weighted_n"] = weighted_n
    if counts:
        flat_counts = np.asarray([c for _, g in groups for c in g.counts], dtype=np.int32)
        dcols["counts"] = _list_array([len(g.counts) for _, g in groups], flat_counts)
    level = 19 if compact else 6
    _write_table(pa.table(qcols, schema=_Q_SCHEMA), directory / QUESTIONS, level)
    _write_table(pa.table({f.name: dcols[f.name] for f in schema}, schema=schema), directory / DISTRIBUTIONS,
                 level)


def _lists(table: pa.Table, name: str) -> tuple[list, np.ndarray]:
    """A list column as one flat Python list plus row offsets (fast: no per-row Arrow calls)."""
    arr = table.column(name).combine_chunks()
    return arr.flatten().to_pylist(), arr.offsets.to_numpy()


def _renormalised(table: pa.Table, name: str) -> tuple[list, np.ndarray]:
    arr = table.column(name).combine_chunks()
    flat = arr.flatten().to_numpy().astype(np.float64)
    offsets = arr.offsets.to_numpy()
    lengths = np.diff(offsets)
    sums = np.add.reduceat(flat, offsets[:-1]) if len(flat) else np.zeros(len(lengths))
    sums = np.where(lengths > 0, sums, 1.0)
    flat = flat / np.repeat(sums, lengths)
    return flat.tolist(), offsets


def _read_table(path: Path) -> pa.Table:
    try:
        return pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        reason = " ".join(str(exc).split())[:200]
        raise SurveyDataError(f"{path}: not a readable Parquet table ({type(exc).__name__}: {reason}); rebuild it "
                              "with `ava data build-surveys`") from None


def read_benchmark(directory: str | Path) -> list[SurveyQuestion]:
    directory = Path(directory)
    qt = _read_table(directory / QUESTIONS)
    dt = _read_table(directory / DISTRIBUTIONS)
    for table, path, schema in ((qt, QUESTIONS, _Q_SCHEMA), (dt, DISTRIBUTIONS, None)):
        need = [f.name for f in schema] if schema else ["key", "attribute", "group", "n"]
        missing = [c for c in need if c not in table.column_names]
        if missing:
            raise SurveyDataError(f"{directory / path}: no column {', '.join(missing)}; not a survey build's table")
    qt = qt.to_pylist()
    compact = "distribution_e4" in dt.column_names
    if compact:
        dist, doff = _renormalised(dt, "distribution_e4")
        refusal = (dt.column("refusal_rate_e4").to_numpy() / SCALE).tolist()
        weighted_n = (dt.column("weighted_n_e2").to_numpy() / 100).tolist()
    else:
        dist, doff = _lists(dt, "distribution")
        refusal = dt.column("refusal_rate").to_pylist()
        weighted_n = dt.column("weighted_n").to_pylist()
    counts, coff = _lists(dt, "counts") if "counts" in dt.column_names else (None, None)
    keys, atts, grps = (dt.column(c).to_pylist() for c in ("key", "attribute", "group"))
    ns = dt.column("n").to_pylist()
    groups: dict[str, list[GroupDistribution]] = {}
    for i, key in enumerate(keys):
        groups.setdefault(key, []).append(GroupDistribution(
            attribute=atts[i], group=grps[i], distribution=tuple(dist[doff[i]:doff[i + 1]]),
            refusal_rate=refusal[i], n=ns[i], weighted_n=weighted_n[i],
            counts=tuple(counts[coff[i]:coff[i + 1]]) if counts is not None else (),
        ))
    out = []
    for row in qt:
        out.append(SurveyQuestion(
            key=row["key"], wave=row["wave"], text=row["text"], options=tuple(row["options"]),
            ordinals=tuple(row["ordinals"]), refusal_options=tuple(row["refusal_options"]),
            text_source=row["text_source"], ordinal_source=row["ordinal_source"],
            weighted=bool(row["weighted"]), groups=tuple(groups.get(row["key"], ())),
            topic=row["topic"], date=row["date"], tags=tuple(row["tags"]), column=row["column"],
        ))
    return out


def read_manifest(directory: str | Path) -> dict:
    return json.loads(SurveyBuild(Path(directory)).manifest.read_text(encoding="utf-8"))


_REBUILD = "rerun `ava data build-surveys --pew-dir DIR --out {dir}` (finished waves are reused)"


def finished_manifest(directory: str | Path, bundled: bool = False) -> dict:
    """The manifest of a build that may be used; ``SurveyDataError`` (saying what to do) for any other.

    A build is finished when its run record (``run.json``, :mod:`ava.runs`) says complete, and then
    its manifest must also say ``complete: true`` without errors (builder 1 wrote ``complete: true``
    beside errors). ``bundled``: the copy shipped in the package, which has no run record (it is a
    release, not a run: see :func:`ava.surveys.load_benchmark`); its manifest alone is checked. A
    folder with neither a run record nor a manifest is ``FileNotFoundError`` (not a survey build).
    """
    from ava.runs import incomplete_reason

    directory = Path(directory)
    folder = SurveyBuild(directory)
    path = folder.manifest
    why = None if bundled else incomplete_reason(directory, KIND)
    if why is not None and not path.is_file() and not folder.record.is_file():
        raise FileNotFoundError(f"{directory}: no run record or manifest.json, so not a survey build; run "
                                "`ava data build-surveys --pew-dir DIR --out DIR`")
    if why is not None and not folder.record.is_file():
        raise SurveyDataError(f"{directory}: no run record (run.json) saying the build finished: it was made by an "
                              "ava before run records, or not by `ava data build-surveys`; rebuild it with "
                              f"`ava data build-surveys --pew-dir DIR --out {directory} --restart`")
    if why is not None:
        raise SurveyDataError(f"{directory}: incomplete survey build, not usable ({why}); "
                              f"{_REBUILD.format(dir=directory)}")
    try:
        manifest = read_manifest(directory)
    except (FileNotFoundError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SurveyDataError(f"{path}: unreadable ({type(exc).__name__}); {_REBUILD.format(dir=directory)}") \
            from None
    if not isinstance(manifest, dict) or manifest.get("complete") is not True or manifest.get("errors"):
        errors = manifest.get("errors") if isinstance(manifest, dict) else None
        errors = [str(e) for e in errors] if isinstance(errors, list) else [str(errors)] if errors else []
        why = (f": {errors[0]}" + (f" (and {len(errors) - 1} more)" if len(errors) > 1 else "")) if errors else ""
        raise SurveyDataError(f"{directory}: incomplete survey build, not usable{why}; fix what its manifest.json "
                              f"lists under errors and {_REBUILD.format(dir=directory)}")
    return manifest


def check_groups(name: str, directory: Path, questions: list[SurveyQuestion]) -> None:
    """Refuse a benchmark with no questions, or with questions none of whose 60 groups has a respondent:
    a representativeness number over empty groups would be published as if it meant something."""
    if not questions:
        raise SurveyDataError(f"{directory / name}: the benchmark has no questions; "
                              f"{_REBUILD.format(dir=directory)} with the waves it needs")
    empty = [q for q in questions if not any(g.n for g in q.groups if (g.attribute, g.group) != OVERALL)]
    if empty:
        waves = sorted({q.wave for q in empty})
        raise SurveyDataError(f"{directory / name}: {len(empty)} of {len(questions)} questions have no respondent "
                              f"in any demographic group (e.g. {empty[0].key}; waves {', '.join(waves[:5])}); the "
                              "demographic mapping failed for them: rebuild with the current `ava data "
                              "build-surveys`, which refuses such waves")
