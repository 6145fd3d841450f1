"""Choose the pieces of e5-small's vocabulary that the bundled models keep (issue 40's pruned vocabulary).

Counts every piece over the *training* texts of ../shared (Chinese and English: question pairs, NLI, STS,
sentiment), never the dev files, and over an English word list (the 30k-entry vocabulary of the bundled
English all-MiniLM-L6-v2, whole alphabetic words, lower-case, capitalised and upper-case), adds every piece of
Chinese characters or digits, then reports for each frequency floor how many pieces it keeps and how many
dev texts stay covered (segmented exactly as by the full vocabulary, so their scores cannot change). With
``--write``, stores the chosen set as a bitmap in ``simpair/bundled/e5-small-zh-en.json`` (derived counts, not
data: no text is stored).

    python scripts/prune_vocab.py [--floors 1 2 3 5] [--write --floor 1]
"""
from __future__ import annotations

import argparse
import base64
import csv
import json
import sys
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
TRAIN = ["lcqmc/train.tsv", "bq/train.tsv", "afqmc/train.tsv", "atec/train.tsv", "atec-ccks/train.tsv",
         "pawsx/train.tsv", "medical/ncov-train.tsv", "medical/kuake-qqr-train.tsv", "nli-zh/train.tsv",
         "chinese-sts/train.tsv", "stsb-zh/train.tsv", "stsb-en/sts-train.csv", "mrpc/train.tsv",
         "sentiment/chnsenticorp/train.tsv", "sentiment/sst2/train.tsv"]
DEV = ["lcqmc/dev.tsv", "bq/dev.tsv", "afqmc/dev.tsv", "pawsx/dev.tsv", "medical/ncov-dev.tsv",
       "medical/kuake-qqr-dev.tsv", "stsb-zh/dev.tsv", "stsb-en/sts-dev.csv", "sentiment/chnsenticorp/dev.tsv",
       "sentiment/sst2/dev.tsv"]
PROMPTS = ["query: ", "passage: "]  # the e5 prefixes the bi-encoder adds


def texts(rel: str) -> Iterator[str]:
    """Every text field of a shared file (numbers and labels skipped)."""
    with open(SHARED / rel, encoding="utf-8", newline="") as fh:
        rows = csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
        if rel.startswith("stsb-en"):
            for row in rows:
                yield from (t for t in row[5:7] if t)
            return
        header = next(rows, [])
        cols = [i for i, name in enumerate(header) if name in ("text_a", "text_b", "sentence", "sentence1",
                                                                "sentence2", "text")]
        for row in rows:
            yield from (row[i] for i in cols if i < len(row) and row[i])


def english_words() -> list[str]:
    """The whole alphabetic words of all-MiniLM-L6-v2's WordPiece vocabulary, in three casings."""
    from simpair.models.resolve import minilm_dir

    lines = (minilm_dir() / "vocab.txt").read_text(encoding="utf-8").split()
    words = [w for w in lines if w.isascii() and w.isalpha()]
    return words + [w.capitalize() for w in words] + [w.upper() for w in words]


def main() -> int:
    from tokenizers import Tokenizer

    from simpair.models.resolve import e5_small_dir
    from simpair.models.vocab import KEPT_FILE as OUT
    from simpair.models.vocab import count_pieces, covered, han_and_digit_pieces, pieces_to_keep

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--floors", type=int, nargs="+", default=[1, 2, 3, 5, 10])
    parser.add_argument("--write", action="store_true")
    parser.add_argument("--floor", type=int, default=1, help="The floor written with --write.")
    args = parser.parse_args()
    if not SHARED.is_dir():
        print(f"needs {SHARED}", file=sys.stderr)
        return 2
    base = e5_small_dir()
    tok = Tokenizer.from_file(str(base / "tokenizer.json"))
    spec = json.loads((base / "tokenizer.json").read_text(encoding="utf-8"))
    size = len(spec["model"]["vocab"])
    started = time.time()
    counts = count_pieces(tok, (t for rel in TRAIN for t in texts(rel)), size) + count_pieces(tok, PROMPTS, size)
    counts += count_pieces(tok, english_words(), size)
    always = han_and_digit_pieces(spec)
    dev = {rel: list(texts(rel)) for rel in DEV}
    report = {"counted_seconds": round(time.time() - started, 1), "pieces": size,
              "pieces_seen": int((counts > 0).sum()), "floors": {}}
    for floor in sorted(set(args.floors) | {args.floor}):
        keep = set(pieces_to_keep(spec, counts, floor)) | always
        cover = {rel.rsplit(".", 1)[0]: round(float(np.mean(covered(tok, keep, t))), 4)
                 for rel, t in dev.items()}
        report["floors"][floor] = {"kept": len(keep), "dev_texts_covered": cover}
        print(json.dumps({"floor": floor, "kept": len(keep), "covered": cover}, ensure_ascii=False), flush=True)
    if args.write:
        keep = sorted(set(pieces_to_keep(spec, counts, args.floor)) | always)
        bitmap = np.zeros(size, dtype=bool)
        bitmap[keep] = True
        OUT.write_text(json.dumps({
            "base": "e5-small", "pieces": size, "kept": len(keep), "floor": args.floor,
            "rule": f"one-character pieces, special tokens, the lowest-scoring piece, every piece of Chinese characters "
                    f"or digits, and every piece seen at least {args.floor} times in the training texts of ../shared "
                    f"({', '.join(TRAIN)}), the e5 prompts and all-MiniLM-L6-v2's English words",
            "dev_texts_covered": report["floors"][args.floor]["dev_texts_covered"],
            "bitmap": base64.b64encode(zlib.compress(np.packbits(bitmap).tobytes(), 9)).decode("ascii"),
        }, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"wrote {OUT} ({len(keep)} of {size} pieces)")
    print(json.dumps(report, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
