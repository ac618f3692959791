"""Evaluation: benchmark tasks scored (or answered) by a model into a run directory.

Layers, each a module or folder:

* ``task`` -- what a task is (``Task`` / ``GenerationTask``), its items, its typed
  ``TaskResult``, and the ``TaskOptions`` a task factory takes;
* ``tasks/`` -- one module per benchmark (loader, prompts, metrics, ``make_tasks``);
* ``registry`` -- benchmark name -> module, its ``--set`` settings and what it supports;
* ``prompts/`` -- prompt templates and steering personas (versioned data);
* ``metrics/`` -- metric maths several tasks (or stages) share;
* ``data`` -- finding and reading benchmark data, drop accounting, ``--limit`` sampling;
* ``rundir`` / ``runner`` -- the run directory (caches, files) and the loop that fills it;
* ``suites`` -- the paper's headline table; ``cli`` -- ``ava eval``.
"""
