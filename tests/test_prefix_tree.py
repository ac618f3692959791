"""Prefix-tree plans: every prompt is reachable, shared runs are computed once, chunks bound memory."""

from __future__ import annotations

from ava.models.prefix_tree import build_tree, chunks_by_tokens, computed_tokens


def _paths(root):
    """Each request's full token sequence, rebuilt from the tree."""
    out = {}

    def visit(node, prefix):
        here = prefix + node.span
        for i in node.ends:
            out[i] = here
        for child in node.children:
            visit(child, here)

    visit(root, ())
    return out


SEQS = [
    (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 20),  # persona 1..12, item 20
    (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 21),
    (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 22),
    (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12),  # ends where others go on
    (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 22),  # a duplicate prompt
    (7, 7, 7),
]


def test_tree_reaches_every_prompt_and_shares_the_common_run():
    root = build_tree(SEQS, range(len(SEQS)), min_saving=1)
    assert {i: tuple(s) for i, s in enumerate(SEQS)} == _paths(root)
    (shared, other) = root.children
    assert shared.span == tuple(range(1, 13)) and shared.ends == [3]
    assert sorted(c.span for c in shared.children) == [(20,), (21,), (22,)]
    assert [c.ends for c in shared.children if c.span == (22,)] == [[2, 4]]
    assert other.span == (7, 7, 7) and other.ends == [5]
    assert computed_tokens(root) == 12 + 3 + 3


def test_tiny_shared_runs_are_folded_into_the_children():
    seqs = [(1, 2, 30, 31, 32), (1, 2, 40, 41, 42), (1, 2, 50, 51, 52)]
    kept = build_tree(seqs, range(3), min_saving=4)  # sharing (1, 2) saves 2 x 2 = 4 tokens
    folded = build_tree(seqs, range(3), min_saving=5)
    assert [c.span for c in kept.children] == [(1, 2)]
    assert sorted(c.span for c in folded.children) == sorted(seqs)
    assert _paths(kept) == _paths(folded) == dict(enumerate(seqs))


def test_flat_plan_shares_nothing():
    root = build_tree(SEQS, range(len(SEQS)), share=False)
    assert computed_tokens(root) == sum(map(len, SEQS))
    assert all(not c.children for c in root.children)


def test_chunks_keep_shared_prompts_together_and_respect_the_budget():
    seqs = [(9, 1, 2), (1, 2, 3, 4), (1, 2, 3, 5), (9, 1, 3), (1, 2, 3, 6)]
    chunks = chunks_by_tokens(seqs, max_tokens=6)
    assert chunks == [[1, 2, 4], [0, 3]]  # token order: the (1, 2, 3, *) prompts share 4 + 1 + 1 tokens
    assert sorted(i for c in chunks for i in c) == list(range(5))
    assert chunks_by_tokens(seqs, max_tokens=1) == [[1], [2], [4], [0], [3]]  # a prompt is never split
