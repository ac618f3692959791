"""The dataset on disk: ``OUT/data/<split>-NNNNN-of-NNNNN.parquet`` (+ ``OUT/jsonl/<split>.jsonl`` on request).

The part names follow the Hugging Face Hub's sharded-split convention, so
``datasets.load_dataset(OUT)`` finds exactly the splits ``train``, ``test_advertiser`` and
``test_temporal`` from the file names alone (folders named ``test_*`` would be merged into one
``test`` split by the library's keyword matching). One Parquet column per
:class:`InstructionSample` field (``ad_ids`` as ``list<string>``). This module writes; the one
reader of a finished build is :func:`ava.training.data.read_split` (memory-mapped).
"""

from __future__ import annotations

import json
from dataclasses import asdict, fields
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from ava.contracts.instructions import SPLITS, InstructionSample
from ava.io import atomic_write

SCHEMA = pa.schema(
    [
        pa.field(f.name, pa.list_(pa.string()) if f.name == "ad_ids" else pa.string(),
                 nullable=f.name in ("label", "source_text"))
        for f in fields(InstructionSample)
    ]
)
PART_GLOB = "data/{split}-[0-9][0-9][0-9][0-9][0-9]-of-[0-9][0-9][0-9][0-9][0-9].parquet"
"""Every part of one split, relative to OUT (the dataset card's ``data_files`` use the same form)."""


def part_path(out_dir: str | Path, split: str, rank: int, parts: int) -> Path:
    """Part ``rank`` of ``parts`` of ``split``: the Hub's ``data/<split>-00000-of-00008.parquet`` names."""
    return Path(out_dir) / "data" / f"{split}-{rank:05d}-of-{parts:05d}.parquet"


def split_parts(out_dir: str | Path, split: str) -> list[Path]:
    """The Parquet parts of ``split`` in part order (the order rows are meant to be read in)."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}: use one of {SPLITS}")
    return sorted(Path(out_dir).glob(PART_GLOB.format(split=split)))


def compact_parts(out_dir: str | Path) -> None:
    """Remove zero-row parts and renumber the rest ``-i-of-k`` (in their order).

    Why: every worker writes its part of every split, and a worker that got no rows of a split
    writes an empty file; datasets' Parquet builder refuses those (``ArrowInvalid: BatchSize must
    be greater than 0``), so one empty part would make ``load_dataset(OUT)`` fail for the whole
    build. A split with no rows at all is left without files (the card lists only splits that
    have rows). Deterministic, so the same build still gives the same bytes and names.
    """
    for split in SPLITS:
        parts = split_parts(out_dir, split)
        kept = [p for p in parts if pq.read_metadata(p).num_rows > 0]
        for p in parts:
            if p not in kept:
                p.unlink()
        if len(kept) == len(parts):
            continue
        for rank, p in enumerate(kept):
            p.replace(part_path(out_dir, split, rank, len(kept)))


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


def sample_line(sample: InstructionSample) -> str:
    return json.dumps(asdict(sample), ensure_ascii=False, sort_keys=True)


def write_jsonl(out_dir: str | Path, split: str) -> Path:
    """``OUT/jsonl/<split>.jsonl`` from the Parquet parts (only when asked: it is ~25x the Parquet)."""
    out_dir = Path(out_dir)
    path = out_dir / "jsonl" / f"{split}.jsonl"
    with atomic_write(path) as fh:
        for part in split_parts(out_dir, split):
            for batch in pq.ParquetFile(part).iter_batches(batch_size=4096):
                for s in from_table(pa.Table.from_batches([batch], schema=SCHEMA)):
                    fh.write(sample_line(s) + "\n")
    return path
