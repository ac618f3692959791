"""Why a recipe cannot be used (shared by the recipe's reader and its checks)."""

from __future__ import annotations


class RecipeError(ValueError):
    """A recipe that cannot be used; the message names the file and the key's dotted path."""
