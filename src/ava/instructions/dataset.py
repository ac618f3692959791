"""The instruction dataset on disk: its folder layout, its writer and its one reader.

A build's output folder (``ava data build-ads --out OUT``), named by :class:`DatasetLayout`::

    OUT/data/<split>-NNNNN-of-NNNNN.parquet   the samples, one column per InstructionSample field
    OUT/manifest.json                         counts and settings; written last (its hash names the data)
    OUT/README.md                             the dataset card (ava.instructions.card)
    OUT/skipped.json                          input records not used, with file, line and reason
    OUT/jsonl/<split>.jsonl                   only with --jsonl (~25x the Parquet)
    OUT/_work/                                the builder's intermediate files (ava.instructions.workfiles)
    OUT/run.json                              the run record (ava.runs): a build is finished when it says so

The part names follow the Hugging Face Hub's sharded-split convention, so
``datasets.load_dataset(OUT)`` finds exactly the splits ``train``, ``test_advertiser`` and
``test_temporal`` from the file names alone (folders named ``test_*`` would be merged into one
``test`` split by the library's keyword matching).

Reading: a split is opened with ``datasets`` as a memory-mapped Arrow table (the Parquet parts
are converted once into the ``datasets`` cache, ``HF_DATASETS_CACHE``), never held in RAM as
Python objects, so a 25 M-sample build trains and evaluates in constant memory. :class:`Samples`
shows a split as a lazy sequence of :class:`InstructionSample` for code that wants objects
(evaluation); training works on the Arrow columns directly.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, overload

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ava.contracts.instructions import SPLITS, InstructionSample
from ava.io import atomic_write
from ava.runs import incomplete_reason

KIND = "instructions"
"""The run record's kind of a build (:mod:`ava.runs`)."""
SCHEMA = pa.schema(
    [
        pa.field(f.name, pa.list_(pa.string()) if f.name == "ad_ids" else pa.string(),
                 nullable=f.name in ("label", "source_text"))
        for f in fields(InstructionSample)
    ]
)
REQUIRED = ("id", "task", "family", "prompt", "response")
"""Columns a reader cannot do without (checked on every part); the others have defaults."""
OPTIONAL = ("split", "advertiser", "ad_ids", "template_version", "label", "source_text")


class DatasetError(ValueError):
    """An instruction build that cannot be read; the message names the file and what to do."""


@dataclass(frozen=True)
class DatasetLayout:
    """Every path of a build's output folder (the module docstring shows the tree)."""

    root: Path

    OWNED = ("_work", "data", "jsonl", "README.md", "skipped.json", "manifest.json")
    """What a build writes in OUT besides ``run.json``: found without a record it is refused, and
    ``--restart`` removes it."""

    @property
    def data(self) -> Path:
        return self.root / "data"

    def part(self, split: str, rank: int, parts: int) -> Path:
        """Part ``rank`` of ``parts`` of ``split``: the Hub's ``data/<split>-00000-of-00008.parquet`` names."""
        return self.data / f"{split}-{rank:05d}-of-{parts:05d}.parquet"

    @staticmethod
    def parts_pattern(split: str) -> str:
        """The parts of ``split`` as a glob relative to OUT: the card's ``data_files``, so ava reads
        exactly the files ``datasets.load_dataset(OUT)`` reads."""
        return f"data/{split}-*.parquet"

    def parts(self, split: str) -> list[Path]:
        """The Parquet parts of ``split`` in part order (the order rows are meant to be read in)."""
        if split not in SPLITS:
            raise DatasetError(f"unknown split {split!r}: use one of {', '.join(SPLITS)}")
        return sorted(self.root.glob(self.parts_pattern(split)))

    @property
    def manifest(self) -> Path:
        return self.root / "manifest.json"

    @property
    def card(self) -> Path:
        return self.root / "README.md"

    @property
    def skipped(self) -> Path:
        return self.root / "skipped.json"

    def jsonl(self, split: str) -> Path:
        return self.root / "jsonl" / f"{split}.jsonl"

    @property
    def work(self) -> Path:
        return self.root / "_work"


def layout_description() -> dict[str, str]:
    """The layout as the manifest states it, for a reader of the folder without ava."""
    return {"parquet": "data/<split>-NNNNN-of-NNNNN.parquet", "card": "README.md",
            "skipped": "skipped.json", "jsonl": "jsonl/<split>.jsonl (only with --jsonl)"}


# ---------------------------------------------------------------- writing


def to_table(samples: list[InstructionSample]) -> pa.Table:
    """Column by column: ``asdict`` per row deep-copies every string and cost 5x as much (20 us a
    sample, ~0.4 ms per ad over a build's 25 samples an ad); the table is the same."""
    columns = {name: [getattr(s, name) for s in samples] for name in SCHEMA.names}
    columns["ad_ids"] = [list(ids) for ids in columns["ad_ids"]]
    return pa.Table.from_pydict(columns, schema=SCHEMA)


def from_table(table: pa.Table) -> list[InstructionSample]:
    return [InstructionSample(**{**row, "ad_ids": tuple(row["ad_ids"])}) for row in table.to_pylist()]


def write_parquet(path: Path, samples: list[InstructionSample]) -> int:
    """Atomically, with fixed settings, so the same samples always give the same bytes; returns the
    table's in-memory (Arrow) size, which the dataset card reports as the split's ``num_bytes``."""
    table = to_table(samples)
    with atomic_write(path, "wb") as fh:
        pq.write_table(table, fh, compression="zstd", write_statistics=False)
    return table.nbytes


def compact_parts(out_dir: str | Path) -> None:
    """Remove zero-row parts and renumber the rest ``-i-of-k`` (in their order).

    Why: every worker writes its part of every split, and a worker that got no rows of a split
    writes an empty file; datasets' Parquet builder refuses those (``ArrowInvalid: BatchSize must
    be greater than 0``), so one empty part would make ``load_dataset(OUT)`` fail for the whole
    build. A split with no rows at all is left without files (the card lists only splits that
    have rows). Deterministic, so the same build still gives the same bytes and names.
    """
    layout = DatasetLayout(Path(out_dir))
    for split in SPLITS:
        parts = layout.parts(split)
        kept = [p for p in parts if pq.read_metadata(p).num_rows > 0]
        for p in parts:
            if p not in kept:
                p.unlink()
        if len(kept) == len(parts):
            continue
        for rank, p in enumerate(kept):
            p.replace(layout.part(split, rank, len(kept)))


def sample_line(sample: InstructionSample) -> str:
    return json.dumps(asdict(sample), ensure_ascii=False, sort_keys=True)


def write_jsonl(out_dir: str | Path, split: str) -> Path:
    """``OUT/jsonl/<split>.jsonl`` from the Parquet parts (only when asked: it is ~25x the Parquet)."""
    layout = DatasetLayout(Path(out_dir))
    path = layout.jsonl(split)
    with atomic_write(path) as fh:
        for part in layout.parts(split):
            for batch in pq.ParquetFile(part).iter_batches(batch_size=4096):
                for s in from_table(pa.Table.from_batches([batch], schema=SCHEMA)):
                    fh.write(sample_line(s) + "\n")
    return path


# ---------------------------------------------------------------- reading


def check_finished(data_dir: str | Path) -> None:
    """Refuse a folder that is not a finished instruction build, saying why (its run record) and what to do."""
    why = incomplete_reason(data_dir, KIND)
    if why is not None:
        raise DatasetError(f"{data_dir}: not a finished instruction build ({why}); run or finish "
                           f"ava data build-ads --out {data_dir}")


def read_manifest(data_dir: str | Path) -> dict[str, Any]:
    """The ``manifest.json`` of a finished build (its run record says complete; :mod:`ava.runs`)."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise DatasetError(f"{data_dir}: no such folder; pass the output folder of ava data build-ads as --data")
    check_finished(data_dir)
    path = DatasetLayout(data_dir).manifest
    if not path.is_file():
        raise DatasetError(f"{path}: not found, though the build's run record says complete; the build is "
                           f"damaged: rebuild with ava data build-ads --restart --out {data_dir}")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{path}: not UTF-8 text (byte {exc.start}); the build is damaged: rebuild") from exc
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{path}:{exc.lineno}: not JSON ({exc.msg}); the build is damaged: rebuild") from exc
    if not isinstance(manifest, dict):
        raise DatasetError(f"{path}: expected a JSON object; the build is damaged: rebuild")
    return manifest


def manifest_sha256(data_dir: str | Path) -> str:
    """Hash of ``manifest.json``: names the exact dataset a model was trained or scored on."""
    read_manifest(data_dir)
    return hashlib.sha256(DatasetLayout(Path(data_dir)).manifest.read_bytes()).hexdigest()


def split_files(data_dir: str | Path, split: str, manifest: dict[str, Any] | None = None) -> list[Path]:
    """The Parquet parts of one split of a build, in order; refused when there are none.

    A split the build's ``manifest`` (when given) counts 0 rows of has no files
    (:func:`compact_parts`): an empty list, not an error."""
    layout = DatasetLayout(Path(data_dir))
    files = layout.parts(split)
    if files or (manifest is not None and (manifest.get("totals") or {}).get(split) == 0):
        return files
    raise DatasetError(f"{layout.data}: no {split}-*.parquet files; build the instruction data first "
                       f"(ava data build-ads --out {data_dir})")


def open_split(data_dir: str | Path, split: str) -> Any:
    """One split as a memory-mapped ``datasets.Dataset``, checked against the build's manifest.

    Refuses (with the file and reason) a build without a manifest, a part that is not Parquet, a
    missing or non-text column, null prompts or responses, and a row count the manifest disagrees
    with (a build changed or truncated after it finished).
    """
    import datasets

    manifest = read_manifest(data_dir)
    files = split_files(data_dir, split, manifest)
    rows = []
    for path in files:
        try:
            meta = pq.ParquetFile(path)
        except Exception as exc:  # pyarrow raises ArrowInvalid/OSError variants for damaged files
            raise DatasetError(f"{path}: not a readable Parquet file ({exc}); rebuild with ava data build-ads") from exc
        _check_schema(path, meta.schema_arrow)
        rows.append(meta.metadata.num_rows)
    expected = (manifest.get("totals") or {}).get(split)
    if isinstance(expected, int) and expected != sum(rows):
        raise DatasetError(
            f"{DatasetLayout(Path(data_dir)).manifest}: says {expected} {split} samples but the Parquet parts "
            f"hold {sum(rows)}; the build was changed after it finished: rebuild"
        )
    if sum(rows) == 0:  # the Parquet builder of datasets cannot generate a split from empty files
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


def _check_schema(path: Path, schema: pa.Schema) -> None:
    missing = [c for c in REQUIRED if c not in schema.names]
    if missing:
        raise DatasetError(f"{path}: missing column(s) {', '.join(missing)}; rebuild with ava data build-ads")
    for name in REQUIRED:
        kind = schema.field(name).type
        if not (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
            raise DatasetError(f"{path}: column {name!r} holds {kind}, not text; rebuild with ava data build-ads")


def _check_nulls(dataset: Any, files: list[Path], rows: list[int]) -> None:
    import pyarrow.compute as pc

    for name in REQUIRED:
        column = dataset.data.column(name)
        if column.null_count:
            first = int(pc.index(pc.is_null(column), True).as_py())
            ends = np.cumsum(rows)
            k = int(np.searchsorted(ends, first, side="right"))
            row = first - (int(ends[k - 1]) if k else 0)
            raise DatasetError(
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
