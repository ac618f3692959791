"""Ads to AVA instruction pairs: signals, templates, pair mining, splits, sharded output.

``ava.instructions.build.build`` builds a dataset; :func:`ava.training.data.read_split` reads one
split of a finished build back (memory-mapped).
"""
