"""The dataset on disk: ``OUT/data/<split>/part-NNNNN.parquet``, ``OUT/jsonl/<split>.jsonl``.

One Parquet column per :class:`InstructionSample` field (``ad_ids`` as ``list<string>``), loadable
with ``datasets.load_dataset("parquet", data_dir=OUT / "data" / split)``.
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


def to_table(samples: list[InstructionSample]) -> pa.Table:
    rows = [asdict(s) for s in samples]
    for row in rows:
        row["ad_ids"] = list(row["ad_ids"])
    return pa.Table.from_pylist(rows, schema=SCHEMA)


def from_table(table: pa.Table) -> list[InstructionSample]:
    return [InstructionSample(**{**row, "ad_ids": tuple(row["ad_ids"])}) for row in table.to_pylist()]


def write_parquet(path: Path, samples: list[InstructionSample]) -> None:
    """Atomically, with fixed settings, so the same samples always give the same bytes."""
    with atomic_write(path, "wb") as fh:
        pq.write_table(to_table(samples), fh, compression="zstd", write_statistics=False)


def read_parquet(path: Path) -> list[InstructionSample]:
    return from_table(pq.read_table(path, schema=SCHEMA))


def sample_line(sample: InstructionSample) -> str:
    return json.dumps(asdict(sample), ensure_ascii=False, sort_keys=True)


def load_samples(out_dir: str | Path, split: str) -> list[InstructionSample]:
    """Every sample of ``split`` in a built dataset, in part order (refuses an unfinished build)."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}: use one of {SPLITS}")
    out_dir = Path(out_dir)
    if not (out_dir / "manifest.json").exists():
        raise FileNotFoundError(f"{out_dir} has no manifest.json: the build is missing or unfinished; run `ava build`")
    parts = sorted((out_dir / "data" / split).glob("part-*.parquet"))
    return [s for part in parts for s in read_parquet(part)]
