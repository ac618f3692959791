"""The data contracts of every stage, in one place.

Each module holds the typed records one stage hands to the next:
``ads`` (a normalised ad-library record), ``instructions`` (an instruction sample),
``surveys`` (a survey question with its weighted group distributions),
``scoring`` (a scoring request and a scored item), ``results`` (an evaluation result),
``runs`` (the record every command keeps beside its output: status, binding, reason).
"""

from ava.contracts.scoring import ScoredItem, ScoreRequest

__all__ = ["ScoreRequest", "ScoredItem"]
