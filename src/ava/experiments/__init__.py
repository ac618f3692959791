"""Experiments: the AVA loop in one command (build -> eval base -> train -> eval tuned -> compare).

* :mod:`ava.experiments.recipe` -- the recipe (versioned YAML data), strictly validated;
* :mod:`ava.experiments.steps` -- the pipeline as a list of steps, each its own bound sub-folder;
* :mod:`ava.experiments.compare` -- base vs tuned on the same questions, paired bootstrap CIs;
* :mod:`ava.experiments.cli` -- ``ava experiment run RECIPE --out DIR``.
"""
