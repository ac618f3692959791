"""ava's benchmarks for other evaluation harnesses: ``ava export lm-eval DIR``.

Why here, inside :mod:`ava.evals`: an export is the evaluation layer seen from another harness.
It is built from the same registry, task factories, prompts and metrics as ``ava eval`` (and
depends on nothing else of ava), so the numbers another harness reports are ava's by
construction. ``lm_eval`` writes the task folder; ``lm_eval_runtime`` is what the written
``utils.py`` calls while lm-evaluation-harness runs.
"""
