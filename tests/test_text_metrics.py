"""Training-task metrics against hand-computed values and independent reference implementations."""

from __future__ import annotations

import json
import math
import re

import pytest
import torch

from ava.evals import model_metrics as mm
from ava.metrics import text as tm
from ava.metrics.classification import accuracy, balanced_accuracy
from conftest import shared_path


def _real_bodies(n: int) -> list[str]:
    """Ad bodies from the real US 2020 sample, reduced to lower-case words so every tokeniser agrees."""
    path = shared_path("ads", "us-political-2020-sample.jsonl")
    bodies = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            for body in json.loads(line).get("ad_creative_bodies") or []:
                words = re.findall(r"[a-z0-9]+", body.lower())
                if len(words) >= 6:
                    bodies.append(" ".join(words))
    assert len(bodies) >= 2 * n
    return bodies[: 2 * n]


def test_bleu_precisions_hand_computed():
    # "the cat sat on the mat" vs "the cat is on the mat": clipped unigrams the x2, cat, on, mat = 5/6;
    # bigrams "the cat", "on the", "the mat" = 3/5; trigram "on the mat" = 1/4; no 4-gram = 0/3.
    got = tm.bleu_precisions(["the cat sat on the mat"], ["the cat is on the mat"])
    assert got == pytest.approx([500 / 6, 60.0, 25.0, 0.0])
    # Clipping: seven "the" against a reference with two.
    assert tm.bleu_precisions(["the the the the the the the"], ["the cat is on the mat"])[0] == pytest.approx(200 / 7)


def test_bleu_precisions_match_nltk_on_real_ads():
    from nltk.translate.bleu_score import modified_precision

    bodies = _real_bodies(40)
    hyps, refs = bodies[0::2], bodies[1::2]
    expected = []
    for n in range(1, 5):
        fractions = [modified_precision([r.split()], h.split(), n) for h, r in zip(hyps, refs, strict=True)]
        num = sum(f.numerator for f in fractions)
        den = sum(f.denominator for f in fractions)
        expected.append(100.0 * num / den)
    assert tm.bleu_precisions(hyps, refs) == pytest.approx(expected)


def test_rouge_lsum_hand_computed():
    # LCS "the cat on the mat" = 5 of 6 tokens each side: P = R = F = 5/6.
    assert tm.rouge_lsum(["the cat sat on the mat"], ["the cat is on the mat"]) == pytest.approx(500 / 6)
    # Summary-level LCS: reference sentences "a b c" / "d e", candidate "a c" / "d x e".
    # Union LCS hits: {a, c} for the first, {d, e} for the second = 4; P = 4/5, R = 4/5.
    assert tm.rouge_lsum(["a c\nd x e"], ["a b c\nd e"]) == pytest.approx(80.0)


def _lcs(a: list[str], b: list[str]) -> int:
    table = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i, x in enumerate(a):
        for j, y in enumerate(b):
            table[i + 1][j + 1] = table[i][j] + 1 if x == y else max(table[i][j + 1], table[i + 1][j])
    return table[-1][-1]


def test_rouge_lsum_matches_independent_lcs_on_real_ads():
    from rouge_score import tokenizers

    bodies = _real_bodies(20)
    hyps, refs = bodies[0::2], bodies[1::2]
    tok = tokenizers.DefaultTokenizer(use_stemmer=True)
    scores = []
    for h, r in zip(hyps, refs, strict=True):
        th, tr = tok.tokenize(h), tok.tokenize(r)
        hits = _lcs(th, tr)
        p, rec = hits / len(th), hits / len(tr)
        scores.append(0.0 if hits == 0 else 2 * p * rec / (p + rec))
    assert tm.rouge_lsum(hyps, refs) == pytest.approx(100 * sum(scores) / len(scores))


def test_bertscore_bundled_encoder_orders_similarity():
    f1 = mm.bertscore_f1(
        ["Vote early this year.", "Vote early this year.", "The recipe needs two eggs."],
        ["Vote early this year.", "Cast your ballot early this year.", "Cast your ballot early this year."],
    )
    assert f1[0] == pytest.approx(1.0, abs=1e-5)
    assert 0.0 < f1[2] < f1[1] < f1[0]


def test_label_normalisation():
    assert tm.find_labels("Best target audience for this ad is Female.", ["male", "female"]) == ["female"]
    assert tm.find_labels("the audience aged 65+; not 55-64", ["55-64", "65+"]) == ["65+", "55-64"]
    assert tm.find_labels("no answer", ["male", "female"]) == []
    buckets = ["0-99", "100-199", "20000-24999"]
    assert tm.find_labels("The ad spent between 100 to 199 USD.", buckets) == ["100-199"]
    assert tm.find_labels("It received between 20,000 and 24,999 impressions.", buckets) == ["20000-24999"]
    assert tm.find_labels("between 10 to 99", buckets) == []  # "0-99" is not inside "10-99"
    text = "Top 3 states where the ad will perform best are West Virginia, Washington, District of Columbia, Kansas."
    assert tm.normalise_states(text) == ["West Virginia", "District of Columbia", "Kansas"]
    assert tm.normalise_states("Arkansas and Virginia") == ["Arkansas", "Virginia"]
    assert tm.normalise_gold_states("Ohio|iowa|Maine") == ["Ohio", "Iowa", "Maine"]
    assert tm.normalise_gold_states("Ohio|Narnia") is None
    assert len(tm.state_names()[0]) == 50


def test_balanced_accuracy_hand_computed():
    # class a: 3/3 right, class b: 0/1 -> balanced (100 + 0) / 2 = 50, plain 75.
    gold, correct = ["a", "a", "a", "b"], [True, True, True, False]
    assert balanced_accuracy(gold, correct) == 50.0
    assert accuracy(correct) == 75.0


def test_target_body_and_delta():
    assert tm.target_body("New Advertisement: The advertisement titled X with content : Vote now!") == "Vote now!"
    assert tm.target_body("plain text") == "plain text"
    assert tm.delta_perplexity([10.0, 20.0], [5.0, 7.0]) == pytest.approx(9.0)


def test_conditional_perplexity_matches_unbatched_loss():
    from ava.models import load_model

    model, tok = load_model("tiny")
    prefixes = ["Given an ad, answer.\n\n", "A much longer prompt about boots and tractors and states.\n\n"]
    texts = ["Female.", "Top 3 states are Ohio, Iowa, Maine."]
    got = mm.conditional_perplexities(model, tok, prefixes, texts, batch_size=2)
    for prefix, text, ppl in zip(prefixes, texts, got, strict=True):
        full = tok(prefix + text)["input_ids"]
        start = len(tok(prefix)["input_ids"])
        labels = torch.tensor([[-100] * start + full[start:]])
        with torch.no_grad():
            loss = model(input_ids=torch.tensor([full]), labels=labels).loss
        assert ppl == pytest.approx(math.exp(float(loss)), rel=1e-4)


def test_bertscore_model_and_layer_reach_bert_score():
    """Another layer of the bundled MiniLM gives bert-score's own numbers for that layer."""
    from bert_score import score

    from ava.models.encoders import minilm_path

    hyps, refs = ["Vote early this year.", "The recipe needs two eggs."], ["Cast your ballot early.", "Buy eggs."]
    layer3 = mm.bertscore_f1(hyps, refs, mm.BertScoreConfig(minilm_path(), 3))
    _, _, direct = score(hyps, refs, model_type=minilm_path(), num_layers=3, device="cpu")
    assert layer3 == pytest.approx([float(x) for x in direct], abs=1e-6)
    assert layer3 != pytest.approx(mm.bertscore_f1(hyps, refs), abs=1e-4)  # the default, layer 6
    assert mm.bertscore_f1(hyps, refs, mm.BertScoreConfig(None, 3)) == pytest.approx(layer3, abs=1e-6)


def test_bertscore_configuration_is_labelled():
    default = mm.BertScoreConfig().describe()
    assert default["layer"] == 6 and not default["comparable_to_published"]
    assert default["note"].startswith("not comparable to published numbers")
    published = mm.BertScoreConfig("roberta-large")  # bert-score's own layer for it, no hard-coded 6
    assert published.resolved_layer == 17 and published.comparable
    assert not mm.BertScoreConfig("roberta-large", 16).comparable
    with pytest.raises(ValueError, match="no default layer for '/some/folder'"):
        _ = mm.BertScoreConfig("/some/folder").resolved_layer
