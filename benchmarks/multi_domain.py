"""One table: models × every dev set of ../shared — accuracy at the model's stored threshold, accuracy at the
best threshold on that set (a ceiling: the cut is chosen on the same data), ROC-AUC, Spearman, pairs/s.

Cross-encoders are scored on pairs; bi-encoders by the cosine of their embeddings (the metric of STS tables:
C-MTEB, text2vec). A model with no stored threshold (zero-shot e5-small) has no "accuracy at stored".

    python benchmarks/multi_domain.py [--model matcher --model encoder --model e5-small ...]
                                      [--limit N] [--markdown] [--save benchmarks/results/multi_domain.json]

Needs ../shared (research data, never copied into the project). Dev files only: test sets are held back.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
SHARED = ROOT.parent / "shared" / "data"
DEV_SETS = {
    "LCQMC": "lcqmc/dev.tsv", "BQ": "bq/dev.tsv", "AFQMC": "afqmc/dev.tsv", "PAWS-X": "pawsx/dev.tsv",
    "nCoV": "medical/ncov-dev.tsv", "KUAKE-QQR": "medical/kuake-qqr-dev.tsv", "STS-B-zh": "stsb-zh/dev.tsv",
}


def _subset(path: Path, limit: int | None, tmp: Path) -> Path:
    """The first ``limit`` rows of ``path`` (header kept), written aside; the file itself without a limit."""
    if not limit:
        return path
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    out = tmp / f"{path.parent.name}-{path.stem}-{limit}.tsv"
    out.write_text("".join(lines[: limit + 1]), encoding="utf-8")
    return out


def score(model: str, name: str, path: Path) -> dict[str, object]:
    from simpair import evaluate

    r = evaluate(model, str(path), batch_size=64)  # STS-B's 0-5 scores: a 0/1 model's probabilities ranked (Spearman)
    m = r["metrics"]
    return {"set": name, "model": model, "kind": r["kind"], "pairs": r["pairs"], "task": r["task"],
            "accuracy": m.get("accuracy"), "threshold": m.get("threshold"), "best_accuracy": m.get("best_accuracy"),
            "roc_auc": m.get("roc_auc"), "spearman": m.get("spearman"), "pearson": m.get("pearson"),
            "pairs_per_second": r["pairs_per_second"]}


def markdown(rows: list[dict[str, object]], models: list[str]) -> str:
    """Per model: acc@stored / best acc / AUC / Spearman for every set, and the mean over the 0/1 sets."""
    def f(v: object) -> str:
        return f"{v:.3f}" if isinstance(v, float) else "—"

    out = ["| model | " + " | ".join(DEV_SETS) + " | mean acc@stored |", "| --- |" + " --- |" * (len(DEV_SETS) + 1)]
    for model in models:
        cells, accs = [], []
        for name in DEV_SETS:
            r = next((x for x in rows if x["model"] == model and x["set"] == name), None)
            if r is None:
                cells.append("—")
            elif r["task"] == "regression":
                cells.append(f"ρ {f(r['spearman'])}")
            else:
                cells.append(f"{f(r['accuracy'])} / {f(r['best_accuracy'])} / {f(r['roc_auc'])} / ρ {f(r['spearman'])}")
                if isinstance(r["accuracy"], float):
                    accs.append(r["accuracy"])
        mean = f(sum(accs) / len(accs)) if accs and len(accs) == sum(1 for n in DEV_SETS if n != "STS-B-zh") else "—"
        out.append(f"| `{model}` | " + " | ".join(cells) + f" | {mean} |")
    return "\n".join(out) + "\n\ncells: accuracy at the stored threshold / best-threshold accuracy / ROC-AUC / " \
                            "Spearman (cosine for bi-encoders); STS-B-zh: Spearman only\n"


def main() -> None:
    import tempfile

    from _common import emit

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", action="append", help="a model name or directory (repeat); default: matcher, "
                    "encoder, e5-small")
    ap.add_argument("--set", action="append", choices=list(DEV_SETS), help="only these dev sets (repeat)")
    ap.add_argument("--limit", type=int, default=None, help="the first N pairs of each dev set")
    ap.add_argument("--markdown", action="store_true", help="also print the README table on stderr")
    ap.add_argument("--save", default=None)
    args = ap.parse_args()
    if not SHARED.is_dir():
        sys.exit(f"{SHARED}: not found (the shared data sets sit beside the project)")
    models = args.model or ["matcher", "encoder", "e5-small"]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for model in models:
            for name in args.set or list(DEV_SETS):
                path = _subset(SHARED / DEV_SETS[name], args.limit, Path(tmp))
                rows.append(score(model, name, path))
                print(f"{model} {name}: {rows[-1]}", file=sys.stderr)
    result = {"benchmark": "multi_domain", "limit": args.limit, "machine": platform.processor() or platform.machine(),
              "cpus": os.cpu_count(), "rows": rows, "table": markdown(rows, models)}
    if args.markdown:
        print(result["table"], file=sys.stderr)
    emit(result, args.save)


if __name__ == "__main__":
    main()
