"""``ava report RUN_DIR [RUN_DIR ...]``: one self-contained HTML page comparing runs."""

from __future__ import annotations

from pathlib import Path

import typer


def report_command(
    run_dirs: list[Path] = typer.Argument(..., help="run directories written by `ava eval --out` (any benchmark)"),
    out: Path = typer.Option(Path("report.html"), "--out", "-o", help="the HTML file to write"),
) -> None:
    """Compare evaluation runs: headline table, per-group heatmap, plots (images embedded)."""
    from ava.io import os_error_line
    from ava.reports.html import ReportError, write_report
    from ava.runs import NotWritable, Output, OutputOverlapsInput, check_apart, check_writable

    try:
        _each_once(run_dirs)
        check_writable(Output(out, folder=False))
        check_apart(out, run_dirs, "--out", "a run directory")  # a report inside a run it reads: not its file
        path = write_report(run_dirs, out)
    except (ReportError, NotWritable, OutputOverlapsInput) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    except OSError as exc:  # a full disk, a permission, a symlink loop: one line naming the file
        typer.echo(f"error: {os_error_line(exc, out)}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"wrote {path} ({len(run_dirs)} run(s))")


def _each_once(run_dirs: list[Path]) -> None:
    """A run directory named twice (by one path, or by two that lead to it) would be a column twice."""
    import os

    from ava.reports.html import ReportError

    seen: dict[str, Path] = {}
    for given in run_dirs:
        real = os.path.realpath(given)
        if real in seen:
            again = "" if str(seen[real]) == str(given) else f" (as {seen[real]} too)"
            raise ReportError(f"{given}: run directory given twice{again}; give each run directory once")
        seen[real] = given
