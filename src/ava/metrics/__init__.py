"""Pure metrics: numbers from numbers, no model, no file, no task.

One layer above ``contracts`` and below every stage that computes or compares a score: the
survey build (human baselines), the evaluation tasks (which turn a model's outputs into one
:class:`~ava.contracts.results.ItemScore` per item) and the experiments (which reduce the same
item scores of two runs with one set of resamples). Modules:

* :mod:`~ava.metrics.resampling`: the weight-matrix bootstrap and the one interval function;
* :mod:`~ava.metrics.opinion`: WD over option positions, representativeness, human baselines,
  steerability, consistency (OpinionQA, OpinionQA-XL);
* :mod:`~ava.metrics.similarity`: GlobalOpinionQA's 1 - Jensen-Shannon distance and skew;
* :mod:`~ava.metrics.classification`: accuracy, class-balanced accuracy, macro-F1, AUROC;
* :mod:`~ava.metrics.text`: label normalisation, BLEU, ROUGE (the AVA training tasks);
* :mod:`~ava.metrics.reducers`: item scores -> resampled statistics, by name (what a task's
  results record and what a comparison of two runs calls).

Model-running metrics (perplexity, BERTScore) need a model and stay in :mod:`ava.evals`.
"""
