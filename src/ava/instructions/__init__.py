"""Ads to AVA instruction pairs: signals, templates, pair mining, splits, sharded output.

``ava.instructions.build.build`` builds a dataset; :func:`load_samples` reads one split back.
"""

from ava.instructions.output import load_samples

__all__ = ["load_samples"]
