"""The builder's work folder ``OUT/_work``: what one stage of ``ava build`` hands the next.

Layout (one :class:`WorkDir` names every path; nothing else spells them)::

    _work/ingest|samples|pairs/shard-NNNNN.done   completion markers (ava.instructions.pipeline)
    _work/ads/shard-NNNNN.pkl      the usable ads of an ingest shard        ingest  -> samples
    _work/keys/shard-NNNNN.pkl     their AdKeys                             ingest  -> plan
    _work/plan/shard-NNNNN.pkl     per ad: why it is dropped, or None       plan    -> samples
    _work/plan/splits.pkl          advertiser -> split                      plan    -> samples
    _work/plan/plan.json           the plan's counts, written last          plan    -> the driver
    _work/route/from-NNNNN.pkl     a samples shard's ads, by brand shard    samples -> pairs

Each stage's inputs are deleted once every shard of the stage that reads them is done
(:meth:`WorkDir.read_by`), so the folder holds little more than one stage's inputs at a time.

The ``.pkl`` files are private to the build that wrote them (never an output, never read by
another version): pickle is the cheapest faithful round trip of the typed records, and zstd
(pyarrow's codec) cuts them ~5x for little CPU, which is most of ``_work``'s peak size.
"""

from __future__ import annotations

import json
import pickle
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, NamedTuple

import pyarrow as pa

from ava.io import atomic_write

_ZSTD = pa.Codec("zstd", compression_level=3)


class AdKey(NamedTuple):
    """What the plan needs of one usable ad: enough to de-duplicate and to assign splits,
    without holding the ads themselves (all shards' keys are in memory at once)."""

    content_key: str
    advertiser: str
    start_date: str
    """ISO date; every usable ad has one (``Clean`` drops those without)."""
    file: int
    """Index of the ad's input file in the build's inputs."""
    line: int
    ad_id: str

    @property
    def position(self) -> tuple[int, int]:
        """(file, line): where the ad was read, which orders "first copy wins" in de-duplication."""
        return self.file, self.line


@dataclass(frozen=True)
class WorkDir:
    """Every path under a build's ``_work`` folder (see the module docstring for what each holds)."""

    root: Path

    def stage(self, name: str) -> Path:
        """The folder of a parallel stage's completion markers (``ingest``, ``samples``, ``pairs``)."""
        return self.root / name

    def ads(self, rank: int) -> Path:
        return self.root / "ads" / _shard(rank)

    def keys(self, rank: int) -> Path:
        return self.root / "keys" / _shard(rank)

    def drops(self, rank: int) -> Path:
        """Per ad of ingest shard ``rank``, in order: the reason the plan drops it, or ``None``."""
        return self.root / "plan" / _shard(rank)

    @property
    def splits(self) -> Path:
        return self.root / "plan" / "splits.pkl"

    @property
    def plan(self) -> Path:
        """The plan's counts; written after every other plan file, so it marks the plan done."""
        return self.root / "plan" / "plan.json"

    def route(self, source: int) -> Path:
        """Samples shard ``source``'s ads in one object per brand shard (:func:`dump_many`)."""
        return self.root / "route" / f"from-{source:05d}.pkl"

    def read_by(self, stage: str, shards: int) -> list[Path]:
        """The files only ``stage`` reads: safe to delete once all its shards are done."""
        if stage == "plan":
            return [self.root / "keys"]
        if stage == "samples":
            return [self.root / "ads", self.splits, *(self.drops(r) for r in range(shards))]
        if stage == "pairs":
            return [self.root / "route"]
        raise ValueError(f"no stage {stage!r} reads work files")

    @staticmethod
    def remove(paths: list[Path]) -> None:
        """Delete work files and folders (missing ones are fine: a resumed build may have done it)."""
        for path in paths:
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)


def _shard(rank: int) -> str:
    return f"shard-{rank:05d}.pkl"


def dump(path: Path, obj: Any) -> None:
    """One object as a work file (atomically: a crash never leaves half a file)."""
    dump_many(path, [obj])


def load(path: Path) -> Any:
    return load_one(path, 0)


def dump_many(path: Path, objs: list[Any]) -> None:
    """Several objects in one file, each readable alone (:func:`load_one`): one route file per
    source shard instead of shards² small files.

    Format: an 8-byte little-endian header size, a JSON header ``[[packed, unpacked] bytes per
    object]``, then each object's zstd-compressed pickle.
    """
    blobs = [pickle.dumps(o, protocol=pickle.HIGHEST_PROTOCOL) for o in objs]
    packed = [_ZSTD.compress(b, asbytes=True) for b in blobs]
    header = json.dumps([[len(p), len(b)] for p, b in zip(packed, blobs, strict=True)]).encode()
    with atomic_write(path, "wb") as fh:
        fh.write(len(header).to_bytes(8, "little") + header)
        for p in packed:
            fh.write(p)


def _read_header(fh: IO[bytes]) -> list[list[int]]:
    """A work file's header: [packed, unpacked] bytes per object; leaves ``fh`` after it."""
    size = int.from_bytes(fh.read(8), "little")
    return json.loads(fh.read(size))


def raw_sizes(path: Path) -> list[int]:
    """The unpacked size of each object in a work file, from its header alone."""
    with path.open("rb") as fh:
        return [raw for _packed, raw in _read_header(fh)]


def load_one(path: Path, index: int) -> Any:
    """Object ``index`` of a work file, reading only its bytes."""
    with path.open("rb") as fh:
        sizes = _read_header(fh)
        fh.seek(sum(c for c, _ in sizes[:index]), 1)  # past the objects before ``index``
        packed, raw = sizes[index]
        return pickle.loads(_ZSTD.decompress(fh.read(packed), decompressed_size=raw, asbytes=True))
