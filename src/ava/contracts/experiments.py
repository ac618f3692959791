"""What an experiment folder (``ava experiment run --out DIR``) holds, named in one place.

The experiment (:mod:`ava.experiments`) writes it and ``ava report`` (:mod:`ava.reports`) reads
it, so the layout sits below both:

* ``run.json`` / ``.lock``: the experiment's own record (kind ``experiment``), bound to the
  recipe's data, model and training sections;
* ``steps.json``: per step, a hash of the inputs it was made from, and its seconds;
* ``build/``: the instruction build (kind ``instructions``), unless the recipe reuses one;
* ``eval-base/``, ``eval-tuned/``: evaluation run directories (:class:`~ava.contracts.results.RunDirectory`);
* ``train/``: ``run.json`` (kind ``experiment-train``), ``model/`` (an ``ava train --out``
  folder) and ``loss.json`` (the loss per logged step);
* ``arms/<arm>/`` (a reference arm) and ``arms/<arm>-s<seed>/`` (a trained arm, per seed), only
  for a recipe with ``arms:`` or ``seeds:``: ``eval/`` (an evaluation run directory), and for a
  trained arm ``train/`` (as above) and, for ``shuffled-audience``, ``data/`` (the shuffled build);
* ``compare/``: ``comparison.json`` (schema ``ava-experiment-comparison/N``) and ``comparison.png``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


class _TrainingPaths:
    """A training step's files, the same under an experiment (``train/``) and under a trained arm
    (``arms/<arm>-s<seed>/train/``): ``run.json``, ``model/`` (an ``ava train --out`` folder) and
    ``loss.json``."""

    root: Path

    @property
    def train(self) -> Path:
        return self.root / "train"

    @property
    def trained_model(self) -> Path:
        """The ``ava train --out`` folder inside the training step."""
        return self.train / "model"

    @property
    def loss(self) -> Path:
        return self.train / "loss.json"


@dataclass(frozen=True)
class ExperimentFolder(_TrainingPaths):
    """The paths of an experiment folder."""

    root: Path

    OWNED = ("build", "eval-base", "train", "eval-tuned", "arms", "compare", "steps.json")
    """What an experiment writes besides its record: removed by ``--restart``."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    def step(self, name: str) -> Path:
        """A step's own folder (``build``, ``eval-base``, ``train``, ``eval-tuned``, ``compare``)."""
        return self.root / name

    @property
    def steps(self) -> Path:
        return self.root / "steps.json"

    @property
    def build(self) -> Path:
        return self.root / "build"

    def evaluation(self, label: str) -> Path:
        """The evaluation run directory of ``label`` (``base`` or ``tuned``)."""
        return self.root / f"eval-{label}"

    def arm(self, folder: str) -> ArmFolder:
        """An arm's folder (``arms/<name>`` or ``arms/<name>-s<seed>``)."""
        return ArmFolder(self.root / "arms" / folder)

    @property
    def compare(self) -> Path:
        return self.root / "compare"

    @property
    def comparison(self) -> Path:
        return self.compare / "comparison.json"

    @property
    def comparison_plot(self) -> Path:
        return self.compare / "comparison.png"


@dataclass(frozen=True)
class ArmFolder(_TrainingPaths):
    """One arm (and seed) of an experiment with arms: its evaluation, and what it was trained on."""

    root: Path

    @property
    def evaluation(self) -> Path:
        return self.root / "eval"

    @property
    def data(self) -> Path:
        """A derived training build (the shuffled-audience arm's)."""
        return self.root / "data"
