"""The one error of model resolution and loading (a ``ValueError``: the CLI prints it as one line)."""


class ModelError(ValueError):
    """A model that cannot be resolved or used; the message says what to do."""
