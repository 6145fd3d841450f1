"""Readers: every file simpair takes, validated whole before anything runs.

- :mod:`.pairs`: sentence pairs (TSV, CSV, JSONL, STS) with 0/1 labels or scores;
- :mod:`.texts`: single texts with class labels (classification, sentiment);
- :mod:`.corpus`: corpora to index and ``query<TAB>relevant_ids`` files;
- :mod:`.lines`: what they share (decoding, errors by line, format sniffing).
"""
from __future__ import annotations

from .corpus import Entry, read_corpus, read_queries
from .lines import ErrorList, decode_lines, detect_format, read_text_lines, text_problem
from .pairs import (Chunk, Columns, DataQualityWarning, Pair, PairData, ReadOptions, add_swapped, count_pairs,
                    iter_pairs, pair_stats, plan_chunks, read_chunk, read_pairs, score_pair_file)
from .texts import TextData, read_texts

__all__ = ["Chunk", "ReadOptions", "plan_chunks", "read_chunk", "Columns", "DataQualityWarning", "Entry", "ErrorList", "Pair", "PairData", "TextData", "add_swapped",
           "count_pairs", "decode_lines", "detect_format", "iter_pairs", "pair_stats", "read_corpus", "read_pairs", "read_queries",
           "read_text_lines", "read_texts", "score_pair_file", "text_problem"]
