"""The shuffled-audience control (``ava.experiments.shuffle``) on a real build of real ads.

The build is made once (60 US ads + the 25 EU 2019 ads, frequency keywords: ~10 s). Checked: the
samples keep order, ids, tasks and every text but the audience slots; within each subtask the
audiences are permuted (the multiset of labels is the same, and many samples get another's); the
same seed gives the same result and another seed another; a prompt its template does not
reproduce is refused; the derived build trains as ``ava train`` reads it.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from dataclasses import replace

import pytest

from ava.experiments.shuffle import SLOTS, ShuffleError, _patterns, shuffle_audiences, write_shuffled_build
from ava.instructions.templates import load_templates
from conftest import shared_path


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    from ava.instructions.build import build as run_build

    us = shared_path("ads", "us-political-2020-sample.jsonl")
    eu = shared_path("ads", "eu-2019-legacy.jsonl")
    root = tmp_path_factory.mktemp("shuffle")
    lines = us.read_text(encoding="utf-8").splitlines()
    sample = root / "us-60.jsonl"
    sample.write_text("\n".join(random.Random(0).sample(lines, 60)) + "\n", encoding="utf-8")
    run_build([str(sample), str(eu)], root / "build", workers=1, shards=1, seed=0, heldout_fraction=0.4,
              keywords="frequency", log=lambda _: None, progress=False)
    return root / "build"


@pytest.fixture(scope="module")
def samples(build):
    from ava.instructions.dataset import read_split

    return list(read_split(build, "train"))


def _fields(sample):
    t = load_templates()
    for template, pattern in _patterns(t, sample.task):
        m = pattern.fullmatch(sample.prompt)
        if m and template.format(**m.groupdict()) == sample.prompt:
            return template, m.groupdict()
    raise AssertionError(sample.id)


def _slots(sample):
    """The audience a sample names: TAP its answer, the others the template's audience fields."""
    family = sample.task.split("-")[0]
    if family == "TAP":
        return (sample.response, sample.label)
    _, fields = _fields(sample)
    return tuple(fields[name] for name in SLOTS[family])


def test_same_pairs_same_text_audiences_permuted(samples):
    shuffled = shuffle_audiences(samples, seed=0)
    assert len(shuffled) == len(samples) > 300
    families = Counter(s.task.split("-")[0] for s in samples)
    assert families["TAP"] and families["TAG"] and families["TC"] and families["TS"]  # every kind is exercised
    moved = Counter()
    for a, b in zip(samples, shuffled, strict=True):
        assert (a.id, a.task, a.split, a.ad_ids, a.advertiser, a.source_text) == (b.id, b.task, b.split, b.ad_ids,
                                                                                 b.advertiser, b.source_text)
        if a.task.startswith("TAP"):
            assert a.prompt == b.prompt  # the ad's text stays; its answer may move
        else:
            assert a.response == b.response
            # everything but the audience is the same text: b with a's audience put back is a
            template, fields = _fields(b)
            family = a.task.split("-")[0]
            assert template.format(**{**fields, **dict(zip(SLOTS[family], _slots(a), strict=True))}) == a.prompt
        moved[a.task] += _slots(a) != _slots(b)
    by_task = defaultdict(lambda: ([], []))
    for a, b in zip(samples, shuffled, strict=True):
        by_task[a.task][0].append(_slots(a))
        by_task[a.task][1].append(_slots(b))
    for task, (before, after) in by_task.items():
        assert Counter(before) == Counter(after), task  # each subtask's audiences: the same multiset
    # a permutation of a subtask with several distinct audiences moves many of them
    assert moved["TAP-A"] > 10 and moved["TAG-G"] > 5 and moved["TC-A"] > 2


def test_deterministic_per_seed(samples):
    assert shuffle_audiences(samples, seed=3) == shuffle_audiences(samples, seed=3)
    assert shuffle_audiences(samples, seed=3) != shuffle_audiences(samples, seed=4)


def test_a_prompt_the_template_does_not_reproduce_is_refused(samples):
    tc = next(i for i, s in enumerate(samples) if s.task.startswith("TC"))
    broken = list(samples)
    broken[tc] = replace(samples[tc], prompt="Something else entirely\nAnswer:")
    with pytest.raises(ShuffleError, match=rf"sample {samples[tc].id} \(TC-.\): its prompt does not match"):
        shuffle_audiences(broken, seed=0)


def test_derived_build_reads_as_a_build(build, samples, tmp_path):
    from ava.instructions.dataset import manifest_sha256, read_split

    manifest = write_shuffled_build(build, tmp_path / "shuffled", seed=1)
    assert manifest["audience_shuffle"]["seed"] == 1
    assert manifest["audience_shuffle"]["source_manifest_sha256"] == manifest_sha256(build)
    assert list(read_split(tmp_path / "shuffled", "train")) == shuffle_audiences(samples, seed=1)
    assert manifest_sha256(tmp_path / "shuffled") != manifest_sha256(build)
