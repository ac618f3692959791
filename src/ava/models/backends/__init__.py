"""Where a model is read: in this process (transformers, vLLM's offline engine) or on a server.

Every backend sits behind the same :class:`~ava.models.scorer.Scorer` seam (``score`` for
option-letter distributions, ``generate`` for free text), reads the same canonical tokens
(:mod:`ava.models.encoding`) and is named in the scorer's identity, so result caches never mix
backends or modes. See docs/backends.md.

* ``transformers``: :class:`~ava.models.scorer.LMScorer`, the letter engine (the default).
* ``openai``: any OpenAI-compatible ``/v1/completions`` server (:mod:`.openai_source`).
* ``vllm``: vLLM's offline ``LLM`` engine in this process (:mod:`.vllm_source`).

The two non-default backends share one reader (:mod:`.logprob_scorer`) over a
:class:`~.source.LogprobSource`: *exact* mode reads each letter's own log-probability (from the
next token's top-k where it is there, else by echoing the prompt plus the letter), *top-k* mode
reads only the next token's top-k and fills missing letters by the OpinionQA rule (:mod:`.topk`).
"""

BACKENDS = ("transformers", "vllm", "openai")
MODES = ("exact", "topk")
