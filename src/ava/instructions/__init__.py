"""Ads to AVA instruction pairs: signals, templates, pair mining, splits, sharded output.

``ava.instructions.build.build`` builds a dataset; :mod:`ava.instructions.dataset` names its files,
writes them and reads a finished build back (memory-mapped); :mod:`ava.instructions.prompt_format`
is how a sample's prompt and response are shown to a model (in training and in evaluation).
"""
