"""``ava data build-ads``: ad-library files -> AVA instruction dataset (Parquet + dataset card + manifest).

The output folder has one run record (``run.json``, :mod:`ava.runs`): a rerun resumes, a rerun
with other inputs or options is refused naming what differs, ``--restart`` starts over.
"""

from __future__ import annotations

import os
from pathlib import Path

import typer

from ava.instructions.pairs import PairConfig


def build(
    ads: list[Path] = typer.Option(
        ..., "--ads", help="Ad files or folders (.jsonl/.json/.csv, each optionally .gz); repeatable."
    ),
    out: Path = typer.Option(..., "--out", help="Output folder (resumable: re-run to finish a crashed build)."),
    engine: str = typer.Option("local", "--engine", help="local (multiprocessing) or ray (Ray Data; an extra)."),
    ray_address: str = typer.Option(
        None, "--ray-address", help="Run on this Ray cluster (e.g. head:6379, auto); OUT and inputs must be shared."
    ),
    workers: int = typer.Option(min(2, os.cpu_count() or 1), "--workers", help="Parallel shard workers."),
    shards: int = typer.Option(
        None, "--shards", help="Shard count; fixes the part layout, not the content (default: 1 per 16 MiB, min 8)."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of every hashed choice (held-out advertisers, caps)."),
    heldout_fraction: float = typer.Option(0.1, help="Share of advertisers held out (test_advertiser)."),
    temporal_fraction: float = typer.Option(0.1, help="Share of ads after the default temporal cut-off."),
    cutoff: str = typer.Option(None, "--cutoff", help="Temporal cut-off date YYYY-MM-DD (default: quantile)."),
    max_pairs_per_brand: int = typer.Option(1000, help="Cap of TS/TC pairs per brand and subtask."),
    block_size: int = typer.Option(256, help="Distinct bodies compared together within a brand block."),
    max_body_chars: int = typer.Option(
        None, "--max-body-chars", help="Skip (and count) ads whose body is longer (default: data/ads/limits.yaml)."
    ),
    keywords: str = typer.Option("keybert", "--keywords", help="TAG keywords: keybert (the method's) or frequency."),
    embed_backend: str = typer.Option(
        "onnx", "--embed-backend", help="MiniLM on onnx (default), torch (reference) or onnx-int8 (faster, drifts)."
    ),
    embed_cache: bool = typer.Option(
        True, "--embed-cache/--no-embed-cache", help="Reuse body/word vectors across builds (user's ava cache)."
    ),
    jsonl: bool = typer.Option(False, "--jsonl", help="Also write jsonl/<split>.jsonl (~25x the Parquet)."),
    keep_work: bool = typer.Option(False, "--keep-work", help="Keep OUT/_work (intermediate shards) after success."),
    restart: bool = typer.Option(False, "--restart", help="Discard what --out holds and build from scratch."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar per stage."),
) -> None:
    """Build the dataset and print the sample counts per split; rerunning the same command resumes."""
    from ava.instructions.build import build as run_build
    from ava.instructions.cluster import OutputNotShared
    from ava.instructions.pipeline import EngineUnavailable
    from ava.io import os_error_line
    from ava.runs import RunRefused, check_apart, interrupt_on_sigterm

    interrupt_on_sigterm()  # `kill` records the build as interrupted, like Ctrl-C
    try:
        check_apart(out, ads, "--out", "--ads")  # before build() makes OUT: it would read its own output next time
        result = run_build(
            ads, out, engine=engine, workers=workers, shards=shards, seed=seed,
            heldout_fraction=heldout_fraction, temporal_fraction=temporal_fraction, cutoff=cutoff,
            pair=PairConfig(max_pairs_per_brand=max_pairs_per_brand, block_size=block_size, seed=seed,
                            embed_backend=embed_backend),
            keywords=keywords, embed_cache=embed_cache, jsonl=jsonl, keep_work=keep_work, ray_address=ray_address,
            max_body_chars=max_body_chars, restart=restart, progress=progress,
        )
    except KeyboardInterrupt:
        typer.echo(f"error: interrupted; finished shards are kept: rerun the same command to resume ({out})",
                   err=True)
        raise typer.Exit(130) from None
    except (RunRefused, EngineUnavailable, OutputNotShared, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    except OSError as exc:  # a missing input, a full disk, a permission, a symlink loop: one line naming the file
        typer.echo(f"error: {os_error_line(exc, out)}", err=True)
        raise typer.Exit(2) from None
    m = result.manifest
    for split in m["counts"]:
        nonzero = {t: n for t, n in m["counts"][split].items() if n}
        typer.echo(f"{split}: {m['ads'][split]} ads, {m['totals'][split]} samples {nonzero}")
    skipped = {name: f["skipped"] for name, f in m["files"].items() if f["skipped"]}
    if skipped:
        typer.echo(f"skipped records (see {out}/skipped.json): {skipped}", err=True)
    conflicts = m["steps"]["plan"]["dropped"].get("duplicate_id", 0)
    if conflicts:
        typer.echo(f"skipped {conflicts} ads whose id an earlier ad with other content holds "
                   f"(see {out}/skipped.json)", err=True)
