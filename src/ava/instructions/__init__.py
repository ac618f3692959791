"""Ads to AVA instruction pairs: signals, templates, pair mining, splits, sharded output."""
