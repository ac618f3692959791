"""The one reader of the instruction dataset that ``ava build`` writes (training and evaluation).

A split is opened with ``datasets`` as a memory-mapped Arrow table: the Parquet parts are
converted once into the ``datasets`` cache (``HF_DATASETS_CACHE``) and then mapped, never held
in RAM as Python objects, so a 25 M-sample build trains and evaluates in constant memory.
:class:`Samples` shows a split as a lazy sequence of :class:`InstructionSample` for the code
that wants objects (evaluation); training works on the Arrow columns directly.

Where a build keeps its files is decided in one function, :func:`split_files`.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, overload

import numpy as np

from ava.contracts.instructions import SPLITS, InstructionSample
from ava.runs import incomplete_reason

REQUIRED = ("id", "task", "family", "prompt", "response")
OPTIONAL = ("split", "advertiser", "ad_ids", "template_version", "label", "source_text")
# Layouts of a build's Parquet parts, tried in order: the builder's own (``data/<split>/part-N``)
# and the Hub's file naming (``data/<split>-NNNNN-of-NNNNN.parquet``) that ``load_dataset`` reads.
LAYOUTS = ("data/{split}/part-*.parquet", "data/{split}-*.parquet")


class TrainingDataError(ValueError):
    """Input data that cannot be used; the message names the file and what to do."""


def split_files(data_dir: str | Path, split: str, manifest: dict[str, Any] | None = None) -> list[Path]:
    """The Parquet files of one split of a build, in order (the only place that knows the layout).

    A split the build's ``manifest`` (when given) counts 0 rows of has no files
    (:func:`ava.instructions.output.compact_parts`): an empty list, not an error."""
    if split not in SPLITS:
        raise TrainingDataError(f"unknown split {split!r}: use one of {', '.join(SPLITS)}")
    data_dir = Path(data_dir)
    for pattern in LAYOUTS:
        files = sorted(data_dir.glob(pattern.format(split=split)))
        if files:
            return files
    if manifest is not None and (manifest.get("totals") or {}).get(split) == 0:
        return []
    raise TrainingDataError(
        f"{data_dir / 'data' / split}: no part-*.parquet files; build the instruction data first "
        f"(ava data build-ads --out {data_dir})"
    )


def read_manifest(data_dir: str | Path) -> dict[str, Any]:
    """The ``manifest.json`` of a finished build (its run record says complete; :mod:`ava.runs`)."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise TrainingDataError(f"{data_dir}: no such folder; pass the output folder of ava data build-ads as --data")
    check_finished(data_dir)
    path = data_dir / "manifest.json"
    if not path.is_file():
        raise TrainingDataError(f"{path}: not found, though the build's run record says complete; the build is "
                                f"damaged: rebuild with ava data build-ads --restart --out {data_dir}")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise TrainingDataError(f"{path}: not UTF-8 text (byte {exc.start}); the build is damaged: rebuild") from exc
    except json.JSONDecodeError as exc:
        raise TrainingDataError(f"{path}:{exc.lineno}: not JSON ({exc.msg}); the build is damaged: rebuild") from exc
    if not isinstance(manifest, dict):
        raise TrainingDataError(f"{path}: expected a JSON object; the build is damaged: rebuild")
    return manifest


def check_finished(data_dir: str | Path) -> None:
    """Refuse a folder that is not a finished instruction build, saying why (its run record) and what to do."""
    why = incomplete_reason(data_dir, "instructions")
    if why is not None:
        raise TrainingDataError(f"{data_dir}: not a finished instruction build ({why}); run or finish "
                                f"ava data build-ads --out {data_dir}")


def manifest_sha256(data_dir: str | Path) -> str:
    """Hash of ``manifest.json``: names the exact dataset a model was trained or scored on."""
    read_manifest(data_dir)
    return hashlib.sha256((Path(data_dir) / "manifest.json").read_bytes()).hexdigest()


def open_split(data_dir: str | Path, split: str) -> Any:
    """One split as a memory-mapped ``datasets.Dataset``, checked against the build's manifest.

    Refuses (with the file and reason) a build without a manifest, a part that is not Parquet, a
    missing or non-text column, null prompts or responses, and a row count the manifest disagrees
    with (a build changed or truncated after it finished).
    """
    import datasets
    import pyarrow.parquet as pq

    manifest = read_manifest(data_dir)
    files = split_files(data_dir, split, manifest)
    rows = []
    for path in files:
        try:
            meta = pq.ParquetFile(path)
        except Exception as exc:  # pyarrow raises ArrowInvalid/OSError variants for damaged files
            raise TrainingDataError(
                f"{path}: not a readable Parquet file ({exc}); rebuild with ava data build-ads"
            ) from exc
        _check_schema(path, meta.schema_arrow)
        rows.append(meta.metadata.num_rows)
    expected = (manifest.get("totals") or {}).get(split)
    if isinstance(expected, int) and expected != sum(rows):
        raise TrainingDataError(
            f"{Path(data_dir) / 'manifest.json'}: says {expected} {split} samples but the Parquet parts hold "
            f"{sum(rows)}; the build was changed after it finished: rebuild"
        )
    if sum(rows) == 0:  # the Parquet builder of datasets cannot generate a split from empty files
        from ava.instructions.output import SCHEMA

        return datasets.Dataset((pq.read_schema(files[0]) if files else SCHEMA).empty_table())
    was_enabled = datasets.utils.logging.is_progress_bar_enabled()
    if sum(rows) < 100_000:  # a bar per small split is noise; a big conversion shows its progress
        datasets.disable_progress_bars()
    try:
        dataset = datasets.load_dataset("parquet", data_files={split: [str(p) for p in files]}, split=split)
    finally:
        if was_enabled:
            datasets.enable_progress_bars()
    _check_nulls(dataset, files, rows)
    return dataset


def _check_schema(path: Path, schema: Any) -> None:
    import pyarrow as pa

    missing = [c for c in REQUIRED if c not in schema.names]
    if missing:
        raise TrainingDataError(f"{path}: missing column(s) {', '.join(missing)}; rebuild with ava data build-ads")
    for name in REQUIRED:
        kind = schema.field(name).type
        if not (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
            raise TrainingDataError(f"{path}: column {name!r} holds {kind}, not text; rebuild with ava data build-ads")


def _check_nulls(dataset: Any, files: list[Path], rows: list[int]) -> None:
    import pyarrow.compute as pc

    for name in REQUIRED:
        column = dataset.data.column(name)
        if column.null_count:
            first = int(pc.index(pc.is_null(column), True).as_py())
            ends = np.cumsum(rows)
            k = int(np.searchsorted(ends, first, side="right"))
            row = first - (int(ends[k - 1]) if k else 0)
            raise TrainingDataError(
                f"{files[k]}: row {row}: {name} is null ({column.null_count} null(s) in the split); "
                "the build is damaged: rebuild"
            )


def _sample(row: dict[str, Any], split: str) -> InstructionSample:
    return InstructionSample(
        id=row["id"],
        task=row["task"],
        family=row["family"],
        split=row.get("split") or split,
        prompt=row["prompt"],
        response=row["response"],
        advertiser=row.get("advertiser") or "",
        ad_ids=tuple(row.get("ad_ids") or ()),
        template_version=row.get("template_version") or "",
        label=row.get("label"),
        source_text=row.get("source_text"),
    )


class Samples(Sequence[InstructionSample]):
    """A split (or a selection of it) as a lazy sequence of samples over the memory-mapped table.

    Items are made when asked for: iterating 25 M samples streams them in blocks instead of
    holding them all. ``dataset`` is the underlying ``datasets.Dataset`` for column-wise work.
    """

    def __init__(self, dataset: Any, split: str) -> None:
        self.dataset = dataset
        self.split = split

    def __len__(self) -> int:
        return len(self.dataset)

    @overload
    def __getitem__(self, index: int) -> InstructionSample: ...

    @overload
    def __getitem__(self, index: slice) -> Samples: ...

    def __getitem__(self, index: int | slice) -> InstructionSample | Samples:
        if isinstance(index, slice):
            return self.select(range(len(self))[index])
        return _sample(self.dataset[range(len(self))[index]], self.split)  # range: negative indices, bounds

    def __iter__(self) -> Iterator[InstructionSample]:
        columns = [c for c in (*REQUIRED, *OPTIONAL) if c in self.dataset.column_names]
        for block in self.dataset.select_columns(columns).iter(batch_size=1024):
            for values in zip(*(block[c] for c in columns), strict=True):
                yield _sample(dict(zip(columns, values, strict=True)), self.split)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Samples | list | tuple):
            return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def column(self, name: str) -> list[Any]:
        """One field of every sample, read column-wise (fast, no objects per sample)."""
        return self.dataset.with_format("arrow")[name].to_pylist()

    def select(self, indices: Sequence[int]) -> Samples:
        return Samples(self.dataset.select(indices), self.split)


def read_split(data_dir: str | Path, split: str) -> Samples:
    """All samples of one split, in file order (the builder's order is already deterministic)."""
    return Samples(open_split(data_dir, split), split)


def task_codes(tasks: Any) -> tuple[list[str], np.ndarray]:
    """Sorted task names and each row's index into them, from an Arrow column or a list."""
    import pyarrow as pa
    import pyarrow.compute as pc

    array = tasks if isinstance(tasks, pa.ChunkedArray | pa.Array) else pa.array(list(tasks), pa.string())
    names = sorted(pc.unique(array).to_pylist())
    codes = pc.index_in(array, value_set=pa.array(names, pa.string()))
    return names, np.asarray(codes.to_numpy(zero_copy_only=False), dtype=np.int64)


def stratified_indices(tasks: Any, limit: int | None, seed: int, per_task: bool = False) -> list[int]:
    """Row indices (ascending) of a seeded sample keeping every task: ``limit`` in total, or per task.

    With ``per_task=False`` the total is split evenly over the tasks (the first ``limit % n`` tasks,
    alphabetically, take one more); a task with fewer rows than its quota gives all of them.
    """
    names, codes = task_codes(tasks)
    if limit is None:
        return list(range(len(codes)))
    if limit < 0:
        raise TrainingDataError(f"--limit must be >= 0, got {limit}")
    rng = random.Random(seed)
    keep: list[np.ndarray] = []
    for k in range(len(names)):
        quota = limit if per_task else limit // len(names) + (1 if k < limit % len(names) else 0)
        idx = np.flatnonzero(codes == k)
        # rng.sample(seq, n) only uses len(seq) and indexing: sampling positions gives the same draw
        keep.append(idx if len(idx) <= quota else idx[rng.sample(range(len(idx)), quota)])
    return sorted(int(i) for i in np.concatenate(keep)) if keep else []


def stratified_sample(
    samples: Sequence[InstructionSample], limit: int | None, seed: int, per_task: bool = False
) -> Sequence[InstructionSample]:
    """A seeded sample keeping every task (see :func:`stratified_indices`), in input order.

    A :class:`Samples` view gives a :class:`Samples` view (no sample objects made); a list a list.
    """
    if limit is None:
        return samples if isinstance(samples, Samples) else list(samples)
    if isinstance(samples, Samples):
        return samples.select(stratified_indices(samples.dataset.with_format("arrow")["task"], limit, seed, per_task))
    chosen = stratified_indices([s.task for s in samples], limit, seed, per_task)
    return [samples[i] for i in chosen]
