"""Models by name, and the letter-scoring engine that reads their opinions."""

from ava.models.loading import ModelError, load_model, resolve_model
from ava.models.options import ModelOptions
from ava.models.scorer import Scorer, load_scorer

__all__ = ["ModelError", "ModelOptions", "Scorer", "load_model", "load_scorer", "resolve_model"]
