"""How long the newcomer's loop takes on this machine: ``mine`` a plain question list, ``label`` 1k pairs,
``adapt`` on them (issue 38: under 30 minutes on 2 cores for 1k labels, labelling included).

    python benchmarks/adaptation_loop.py [--questions 5000] [--labels 1000] [--save benchmarks/results/adaptation_loop.json]

The question list: the first ``--questions`` distinct questions of BQ's train file (a bank's question log
stand-in). ``mine`` picks ``--labels`` pairs; they are answered through :class:`simpair.adaptation.labels.
LabelSession` (what ``simpair label`` and the web panel call, rewriting the labelled file atomically after every
answer) by a stand-in annotator: the general ``matcher``'s decision. So the tool's own labelling time is measured,
not a person's; the report gives the minutes a person has left for the answers inside the 30. The adapted model's
quality is not measured here (the stand-in's labels are the matcher's own): ``benchmarks/adaptation.py`` does that.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
BQ = ROOT.parent / "shared" / "data" / "bq" / "train.tsv"
BUDGET_S = 30 * 60


def questions(n: int) -> list[str]:
    from simpair.readers import read_pairs

    seen: dict[str, None] = {}
    for p in read_pairs(BQ, task="classification", warn=False).pairs:
        for t in (p.text_a, p.text_b):
            seen.setdefault(t)
        if len(seen) >= n:
            break
    return list(seen)[:n]


def main() -> None:
    from _common import emit

    from simpair import CrossEncoder
    from simpair.adaptation.adapt import adapt
    from simpair.adaptation.labels import LabelSession
    from simpair.adaptation.mine import mine

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--questions", type=int, default=5000)
    ap.add_argument("--labels", type=int, default=1000)
    ap.add_argument("--save", default=None)
    args = ap.parse_args()
    if not BQ.is_file():
        sys.exit(f"needs {BQ} (the shared research data)")
    with tempfile.TemporaryDirectory() as tmp:
        q = Path(tmp) / "questions.txt"
        q.write_text("\n".join(questions(args.questions)) + "\n", encoding="utf-8")
        t0 = time.perf_counter()
        mined = mine(q, Path(tmp) / "to-label.tsv", n=args.labels)
        mine_s = time.perf_counter() - t0
        session = LabelSession(Path(tmp) / "to-label.tsv")
        annotator = CrossEncoder("matcher", bulk=True)
        label_s = 0.0
        while (index := session.next_index()) is not None:
            item = session.item(index)
            same = annotator.match(item["text_a"], item["text_b"])["same"]  # the stand-in's answer, not timed
            t1 = time.perf_counter()
            session.answer(index, "same" if same else "different")
            label_s += time.perf_counter() - t1
        t0 = time.perf_counter()
        report = adapt(session.out, Path(tmp) / "adapted")
        adapt_s = time.perf_counter() - t0
    machine_s = mine_s + label_s + adapt_s
    emit({"benchmark": "adaptation_loop", "model": "matcher", "questions": mined["questions"],
          "candidates": mined["candidates"], "labels": mined["selected"],
          "seconds": {"mine": round(mine_s, 1), "label_tool": round(label_s, 2), "adapt": round(adapt_s, 1),
                      "total_machine": round(machine_s, 1)},
          "adapt_training_seconds": report["training"]["seconds"],
          "minutes_left_for_a_person_to_answer": round((BUDGET_S - machine_s) / 60, 1),
          "seconds_per_answer_that_fit_in_30_min": round((BUDGET_S - machine_s) / max(mined["selected"], 1), 2)},
         args.save)


if __name__ == "__main__":
    main()
