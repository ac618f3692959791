"""Prompt templates of the benchmarks, as versioned data (``ava/data/evals/*.yaml|json``).

``opinion``: the survey benchmarks' question block, options and cue; ``personas``: the
steering texts (OpinionQA's QA / BIO / PORTRAY files and the AVA format); ``culture``: the
GlobalOpinionQA, CultureNLI and CultureBank prompts. A template's ``version`` is part of every
task version that uses it, so a changed template never reuses a cached score.
"""
