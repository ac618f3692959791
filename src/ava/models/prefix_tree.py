"""Prefix trees over token sequences: which prompt tokens are computed once and reused.

Opinion workloads repeat themselves at the token level: the same persona before every question,
the same battery stem ("How much do you worry about ... ?") before every item, the same
"Question:" and answer-option block under personas that differ only in their answer letter.
A compressed trie (radix tree) over the prompts' token sequences makes every shared run of
tokens one node, computed once; its key/value cache then serves all prompts below it. This is
the idea behind vLLM's automatic prefix caching and SGLang's RadixAttention, planned ahead here
because all prompts are known before scoring starts.

Only the plan lives here (pure Python, no model): the engine executes it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass(eq=False)
class Node:
    """A run of tokens shared by every prompt below it.

    ``span`` are the node's own tokens, after those of its ancestors; ``ends`` the requests
    whose prompt ends exactly here (they read this node's last-position logits).
    """

    span: tuple[int, ...]
    children: list[Node] = field(default_factory=list)
    ends: list[int] = field(default_factory=list)

    def walk(self) -> list[Node]:
        """This node and all below it, parents before children."""
        out, stack = [], [self]
        while stack:
            node = stack.pop()
            out.append(node)
            stack.extend(reversed(node.children))
        return out


def build_tree(seqs: Sequence[Sequence[int]], indices: Sequence[int], share: bool = True, min_saving: int = 8) -> Node:
    """The radix tree of ``seqs[i]`` for ``i`` in ``indices``; the root's span is empty.

    ``share=False`` gives the flat plan (every prompt its own child of the root, nothing reused).
    A shared node whose reuse would save fewer than ``min_saving`` token computations is folded
    into its children: a tiny shared run is cheaper to recompute than to carry as a separate
    cached row.
    """
    root = Node(())
    if not share:
        root.children = [Node(tuple(seqs[i]), ends=[i]) for i in indices]
        return root
    root.children = _grow([tuple(seqs[i]) for i in indices], list(indices), 0)
    for node in reversed(root.walk()):  # children before parents
        node.children = [c for child in node.children for c in _fold(child, min_saving)]
    return root


def _grow(seqs: list[tuple[int, ...]], ids: list[int], offset: int) -> list[Node]:
    """Child nodes for prompts that agree on their first ``offset`` tokens."""
    by_token: dict[int, list[int]] = {}
    for k, seq in enumerate(seqs):
        by_token.setdefault(seq[offset], []).append(k)
    nodes = []
    for members in by_token.values():
        group = [seqs[k] for k in members]
        end = offset + _common_length(group, offset)
        node = Node(group[0][offset:end])
        rest = [k for k in members if len(seqs[k]) > end]
        node.ends = [ids[k] for k in members if len(seqs[k]) == end]
        if rest:
            node.children = _grow([seqs[k] for k in rest], [ids[k] for k in rest], end)
        nodes.append(node)
    return nodes


def _common_length(group: list[tuple[int, ...]], offset: int) -> int:
    """How many tokens from ``offset`` on all sequences of ``group`` share."""
    first = group[0]
    n = len(first) - offset
    for seq in group[1:]:
        n = min(n, len(seq) - offset)
        k = 0
        while k < n and seq[offset + k] == first[offset + k]:
            k += 1
        n = k
    return n


def _fold(node: Node, min_saving: int) -> list[Node]:
    """``node`` itself, or its children carrying its span when sharing it saves too little."""
    if node.ends or not node.children or len(node.span) * (len(node.children) - 1) >= min_saving:
        return [node]
    for child in node.children:
        child.span = node.span + child.span
    return node.children


def chunks_by_tokens(seqs: Sequence[Sequence[int]], max_tokens: int) -> list[list[int]]:
    """Request indices in token order, cut into chunks whose trees hold at most ``max_tokens``
    distinct tokens (the key/value memory a chunk may keep alive). Sorting first keeps prompts
    that share prefixes in the same chunk, so little sharing is lost at the cuts."""
    order = sorted(range(len(seqs)), key=lambda i: tuple(seqs[i]))
    chunks: list[list[int]] = []
    current: list[int] = []
    tokens, previous = 0, ()
    for i in order:
        seq = tuple(seqs[i])
        shared = _common_length([seq, previous], 0) if current and previous else 0
        if current and tokens + len(seq) - shared > max_tokens:
            chunks.append(current)
            current, tokens, shared = [], 0, 0
        current.append(i)
        tokens += len(seq) - shared
        previous = seq
    if current:
        chunks.append(current)
    return chunks


def computed_tokens(root: Node) -> int:
    """Tokens the model forwards to execute this plan (each node's span once)."""
    return sum(len(node.span) for node in root.walk())
