"""A WordPiece vocabulary learnt from word counts, the same in every process.

The algorithm is the one of Hugging Face's ``WordPieceTrainer`` (a BPE trainer whose non-initial
pieces carry the ``##`` prefix): start from the characters, then repeatedly add the merge of the
most frequent adjacent pair of pieces until the vocabulary is full or no pair occurs
``min_frequency`` times. The trainer of ``tokenizers`` numbers the ``##`` pieces in hash-map
order and breaks ties between equally frequent pairs by those numbers, so its vocabulary differs
from process to process (huggingface/tokenizers#1794). Here pieces are numbered in sorted order
and a tie goes to the pair whose pieces sort first as strings: the vocabulary depends on the
counts alone.
"""
from __future__ import annotations

import heapq
from collections import defaultdict
from typing import Iterable, Mapping

PREFIX = "##"


def _pairs(seq: list[str]) -> Iterable[tuple[str, str]]:
    return zip(seq, seq[1:])


def _merge(seq: list[str], a: str, b: str, new: str) -> list[str]:
    """``seq`` with every non-overlapping occurrence of (a, b), left to right, replaced by ``new``."""
    out, i = [], 0
    while i < len(seq):
        if i + 1 < len(seq) and seq[i] == a and seq[i + 1] == b:
            out.append(new)
            i += 2
        else:
            out.append(seq[i])
            i += 1
    return out


def wordpiece_vocab(word_counts: Mapping[str, int], vocab_size: int, min_frequency: int = 2,
                    special_tokens: Iterable[str] = ()) -> list[str]:
    """The vocabulary, in id order, learnt from ``word_counts`` ({word: occurrences}, words as the
    tokenizer's normaliser and pre-tokeniser give them).

    Order: ``special_tokens``; every character that starts a word or occurs in one, sorted; every
    ``##``-prefixed character that occurs after a word's first, sorted; then the merges in the
    order they were made. The first three parts are kept whole even past ``vocab_size`` (every
    word must stay spellable); merges stop at ``vocab_size`` or when the most frequent pair occurs
    fewer than ``min_frequency`` times (counting each word's occurrences).
    """
    if int(vocab_size) < 1 or int(min_frequency) < 0:
        raise ValueError(f"vocab_size={vocab_size}, min_frequency={min_frequency}; expected >= 1 and >= 0")
    words = sorted(w for w, c in word_counts.items() if w and int(c) > 0)
    counts = [int(word_counts[w]) for w in words]
    vocab: list[str] = []
    known: set[str] = set()  # membership only: iterating a set of strings follows the hash seed

    def add(token: str) -> None:
        if token not in known:
            known.add(token)
            vocab.append(token)

    for token in special_tokens:
        add(str(token))
    for token in sorted({c for w in words for c in w}):
        add(token)
    for token in sorted({PREFIX + c for w in words for c in w[1:]}):
        add(token)

    seqs = [[w[0], *(PREFIX + c for c in w[1:])] for w in words]
    pair_count: dict[tuple[str, str], int] = defaultdict(int)
    holders: dict[tuple[str, str], set[int]] = defaultdict(set)  # pair -> words that may hold it
    for i, seq in enumerate(seqs):
        for pair in _pairs(seq):
            pair_count[pair] += counts[i]
            holders[pair].add(i)
    # Max-heap on (count, then the smaller pair as strings); stale entries are skipped when popped.
    heap = [(-c, a, b) for (a, b), c in pair_count.items()]
    heapq.heapify(heap)
    while len(vocab) < int(vocab_size) and heap:
        neg, a, b = heapq.heappop(heap)
        count = pair_count.get((a, b), 0)
        if count != -neg or count == 0:
            continue
        if count < int(min_frequency):
            break
        new = a + (b[len(PREFIX):] if b.startswith(PREFIX) else b)
        add(new)
        changed: set[tuple[str, str]] = set()
        for i in sorted(holders.pop((a, b), ())):
            seq = seqs[i]
            merged = _merge(seq, a, b, new)
            if len(merged) == len(seq):
                continue  # a stale holder: an earlier merge took the pair out of this word
            for pair in _pairs(seq):
                pair_count[pair] -= counts[i]
                changed.add(pair)
            for pair in _pairs(merged):
                pair_count[pair] += counts[i]
                holders[pair].add(i)
                changed.add(pair)
            seqs[i] = merged
        for pair in changed:
            c = pair_count[pair]
            if c > 0:
                heapq.heappush(heap, (-c, *pair))
            else:
                del pair_count[pair]
                holders.pop(pair, None)
    return vocab
