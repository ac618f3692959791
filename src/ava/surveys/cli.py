"""``ava data build-surveys``: raw Pew ATP files -> OpinionQA / OpinionQA-XL benchmark artifacts.

The output folder has one run record (``run.json``, :mod:`ava.runs`): a rerun resumes from the wave
cache, a rerun with other wave files or options is refused naming what differs, ``--restart`` starts
over (``--no-resume``, its old spelling, is kept hidden for one release).
"""

from __future__ import annotations

from pathlib import Path

import typer

data_app = typer.Typer(help="Build benchmark data", no_args_is_help=True)


def print_summary(manifest: dict, echo=typer.echo) -> None:
    """The numbers a build should be judged by: counts, gaps, baselines, the reference check."""
    echo(f"questions: {', '.join(f'{k} {v}' for k, v in manifest['counts'].items())}")
    waves = manifest["waves"]
    echo(f"waves: {sum('error' not in r for r in waves.values())} read, "
         f"{sum('error' in r for r in waves.values())} failed, {len(manifest['skipped_files'])} files skipped")
    for s in manifest["skipped_files"]:
        echo(f"  skipped {s['file']}: {s['reason']}")
    if manifest.get("weights_by_rule"):
        echo(f"weights by rule: {', '.join(f'{k} {v}' for k, v in manifest['weights_by_rule'].items())} "
             "(each wave's weight and why: manifest waves.<wave>.weight)")
    if manifest["unweighted_waves"]:
        echo(f"unweighted (flagged): {', '.join(manifest['unweighted_waves'])}")
    oqa = manifest.get("opinionqa")
    if oqa:
        echo(f"OpinionQA: {oqa['built']} questions of {oqa['info_rows']} info.csv rows "
             f"(steer500 {oqa['steer500']}, degenerate ordinals {oqa['degenerate_ordinals']})")
        hb = oqa.get("human_baselines")
        if hb:
            echo(f"OpinionQA human baselines over {hb['n_questions']} questions x {hb['n_groups']} groups: "
                 f"humans average {hb['humans_average']:.4f}, humans worst {hb['humans_worst']:.4f} "
                 f"({hb['worst_group']})")
        ref = oqa.get("reference_counts")
        if ref:
            echo(f"OpinionQA released unweighted counts reproduced: {ref['pairs_matched']}/"
                 f"{ref['question_attribute_pairs']} (question, attribute) pairs = {ref['match_rate']:.4f}; "
                 f"{ref['cells_matched']}/{ref['group_cells']} group cells")
    for err in manifest["errors"]:
        echo(f"error: {err}", err=True)


@data_app.command("build-surveys")
def build_surveys_cmd(
    pew_dir: Path = typer.Option(..., "--pew-dir", help="Folder with the Pew ATP .sav files (searched recursively)."),
    out: Path = typer.Option(..., "--out", help="Output folder for the Parquet benchmarks, manifest and data card."),
    opinionqa_dir: Path | None = typer.Option(
        None, help="OpinionQA's data folder (human_resp/, topic_mapping.json, reference_counts/); "
        "default: an opinionqa/ folder beside --pew-dir or up to two levels above."),
    questions_dir: Path | None = typer.Option(
        None, help="Folder with opinionqa-xl.json and survey-details.json; default: a questions/ folder beside "
        "--pew-dir or up to two levels above."),
    sav_only: bool = typer.Option(False, help="Build OpinionQA-XL from the .sav files alone (no OpinionQA "
                                  "metadata or question texts needed; no opinionqa benchmark)."),
    allow_unweighted: bool = typer.Option(False, help="Build waves without a weight the rules know unweighted "
                                          "(tagged) instead of failing."),
    weight: list[str] = typer.Option([], help="Name a wave's survey weight where the rules cannot choose "
                                     "it, or to override them (repeatable): --weight W120=WEIGHT_W120_FINAL."),
    workers: int = typer.Option(0, help="Parallel processes (0: one per CPU, at most 8)."),
    wave: list[str] = typer.Option([], help="Build only these waves (repeatable), e.g. --wave W26."),
    compact: bool = typer.Option(False, help="Store probabilities as integers of 1/10,000 (the bundled copy's "
                                 "format)."),
    restart: bool = typer.Option(False, "--restart", help="Discard what --out holds (the wave cache included) and "
                                 "build from scratch."),
    resume: bool = typer.Option(True, "--resume/--no-resume", hidden=True,
                                help="old spellings: --resume is the default, --no-resume means --restart"),
    progress: bool = typer.Option(True, help="Show a progress bar."),
) -> None:
    """Build the opinionqa and opinionqa-xl benchmarks from raw Pew ATP .sav files; rerunning the same
    command resumes (finished waves are reused).

    Exit status: 0 for a complete build; 1 for a build that ran but is incomplete (a wave could not be
    read, mapped or weighted: the manifest says why, no benchmark files are written); 2 for a bad input
    or output folder, found before any wave is read, or an output of other inputs or options; 130 when
    interrupted.
    """
    from ava.io import os_error_line
    from ava.runs import RunRefused, interrupt_on_sigterm
    from ava.surveys.build import build_surveys
    from ava.surveys.errors import SurveyInputError

    interrupt_on_sigterm()  # `kill` records the build as interrupted, like Ctrl-C
    try:
        result = build_surveys(pew_dir, out, opinionqa_dir=opinionqa_dir, questions_dir=questions_dir,
                               workers=workers or None, waves=wave or None, compact=compact,
                               restart=restart or not resume, progress=progress, sav_only=sav_only,
                               allow_unweighted=allow_unweighted, weights=weight, log=lambda s: typer.echo(s, err=True))
    except KeyboardInterrupt:
        typer.echo(f"error: interrupted; finished waves are kept: rerun the same command to resume ({out})", err=True)
        raise typer.Exit(130) from None
    except (SurveyInputError, RunRefused) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    except OSError as exc:  # a full disk, a permission, a symlink loop: one line naming the file
        typer.echo(f"error: {os_error_line(exc, out)}", err=True)
        raise typer.Exit(2) from None
    print_summary(result.manifest)
    if not result.complete:
        typer.echo(f"error: {out}: build incomplete ({len(result.errors)} problem(s) above); only manifest.json (the "
                   "reasons) and the run record (failed) were written. Fix them (or remove the file) and rerun: "
                   "finished waves are reused.", err=True)
        raise typer.Exit(1)
    typer.echo(f"wrote {out}/ (manifest.json, README.md, opinionqa/, opinionqa-xl/)")
