"""One module per benchmark: its loader, prompts (from :mod:`ava.evals.prompts`), task classes,
metrics and a ``make_tasks(options)`` factory named in :mod:`ava.evals.registry`."""
