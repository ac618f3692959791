"""``ava experiment run RECIPE --out DIR``: the AVA loop in one command (see docs/experiment.md)."""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(help="Run the AVA loop from a recipe: build, evaluate, fine-tune, evaluate again, compare.",
                  no_args_is_help=True)


@app.command("run", help="Run (or resume) an experiment recipe into --out; finished steps are reused.")
def run_command(
    recipe: Path = typer.Argument(..., help="the recipe YAML (recipes/cpu-small.yaml, recipes/paper.yaml)"),
    out: Path = typer.Option(..., "--out", "-o", help="experiment folder: build/, eval-base/, train/, eval-tuned/, "
                             "compare/"),
    restart: bool = typer.Option(False, "--restart", help="discard what --out holds and start over"),
    progress: bool = typer.Option(True, help="show progress bars"),
) -> None:
    """Validate the recipe, then run every step not yet finished with the same inputs."""
    from ava.evals.data import DataError
    from ava.evals.registry import UnknownName
    from ava.experiments.recipe import RecipeError, load_recipe
    from ava.experiments.steps import ExperimentError, ExperimentStopped, run_experiment
    from ava.instructions.dataset import DatasetError
    from ava.io import os_error_line
    from ava.models.loading import ModelError
    from ava.runs import RunRefused
    from ava.training.config import ConfigError
    from ava.training.mix import TrainingDataError

    def say(message: str) -> None:
        typer.echo(message, err=True)

    try:
        loaded = load_recipe(recipe)
        run_experiment(loaded, out, restart=restart, progress=progress, say=say)
    except KeyboardInterrupt:
        typer.echo(f"\nerror: interrupted; finished steps and cached scores are kept: rerun the same command to "
                   f"resume ({out})", err=True)
        raise typer.Exit(130) from None
    except ExperimentStopped as exc:
        typer.echo(f"\nerror: {exc}", err=True)
        raise typer.Exit(1) from None
    except (RecipeError, ExperimentError, RunRefused, ConfigError, DatasetError, TrainingDataError, ModelError,
            DataError, UnknownName) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    except OSError as exc:  # a missing file, a full disk, a permission, a symlink loop: one line naming the file
        typer.echo(f"error: {os_error_line(exc, out)}", err=True)
        raise typer.Exit(2) from None
    except Exception as exc:  # a step's own failure: one line (its run.json keeps the reason), no traceback
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        typer.echo(f"error: {type(exc).__name__}: {first}; fix the cause and rerun the same command to resume "
                   f"({out})", err=True)
        raise typer.Exit(1) from None
