"""Metric maths shared by the benchmark tasks: ``opinion`` (WD, representativeness, bootstrap)
and ``text`` (label accuracy, BLEU, ROUGE, BERTScore, perplexity). Tasks own their own small
metrics (similarity, F1 sweeps); what several tasks or stages need lives here."""
