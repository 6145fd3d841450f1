"""Leave-one-domain-out adaptation curves: how far ``simpair adapt`` takes a matcher into a domain it never saw,
per number of labels, with pairs picked at random or by ``simpair mine``'s selection.

``matcher-lcqmc`` was trained on LCQMC only, so BQ, AFQMC, PAWS-X, nCoV, KUAKE-QQR and MRPC are unseen domains
for it; the general ``matcher`` (which saw their train files) is the second curve. For each domain:

- a pool of up to 6,000 train pairs (seeded) stands in for the user's unlabelled log; the labels of the pairs
  picked from it come from the train file, as a stand-in for a person. ``random``: n pairs drawn from the pool;
  ``mined``: :func:`simpair.adaptation.select.select_pairs` on the pool scored by the starting matcher, clustered
  on the bundled encoder's embeddings (mine's candidate search is replaced by the pool: only its pairs have labels);
  its 20 % random ``check`` pairs are what adapt holds out (``random`` holds out a stratified 20 %);
- each point is one :func:`simpair.adaptation.adapt.adapt` run with its defaults (20 % of the labels held out for
  the threshold, as many general replay pairs as labels), then scored on up to 1,000 dev pairs of the domain
  (accuracy at the calibrated threshold, ROC-AUC) and, for forgetting, on 500 LCQMC dev pairs;
- the ceiling: the same command on the whole train file (no replay; 1 epoch above 10k pairs, else 2).

Every point is cached in ``--cache`` (JSON lines, outside git), so a run can stop and resume; the summary
(mean and spread over seeds) goes to ``--save`` and the curves to ``--plot``.

    python benchmarks/adaptation.py --init matcher-lcqmc --sizes 100 300 1000 --seeds 0 --methods random mined
    python benchmarks/adaptation.py --init matcher-lcqmc --specialist
    python benchmarks/adaptation.py --report-only --save benchmarks/results/adaptation.json --plot docs/img/adaptation.png

Needs ../shared (research data, never copied into the project).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
SHARED = ROOT.parent / "shared" / "data"
DOMAINS = {  # name: (train, dev); MRPC has no dev here: its last 800 train pairs (seeded shuffle) stand in
    "BQ": ("bq/train.tsv", "bq/dev.tsv"), "AFQMC": ("afqmc/train.tsv", "afqmc/dev.tsv"),
    "PAWS-X": ("pawsx/train.tsv", "pawsx/dev.tsv"), "nCoV": ("medical/ncov-train.tsv", "medical/ncov-dev.tsv"),
    "KUAKE-QQR": ("medical/kuake-qqr-train.tsv", "medical/kuake-qqr-dev.tsv"), "MRPC": ("mrpc/train.tsv", None),
}
POOL, DEV_PAIRS, FORGET_PAIRS, SEED = 6000, 1000, 500, 20261207


def read(path: Path) -> list[Any]:
    from simpair.readers import read_pairs

    return read_pairs(path, task="classification", warn=False).pairs


def domain_data(name: str) -> tuple[list[Any], list[Any]]:
    """(train pairs, dev pairs ≤ DEV_PAIRS) of a domain, seeded."""
    train_rel, dev_rel = DOMAINS[name]
    train = read(SHARED / train_rel)
    rng = random.Random(SEED)
    if dev_rel is None:
        train = train[:]
        rng.shuffle(train)
        train, dev = train[:-800], train[-800:]
    else:
        dev = read(SHARED / dev_rel)
    return train, rng.sample(dev, min(DEV_PAIRS, len(dev)))


def score(model: str, pairs: list[Any]) -> dict[str, float]:
    """Accuracy at the model's stored threshold and ROC-AUC."""
    import numpy as np
    from sklearn.metrics import roc_auc_score

    from simpair import CrossEncoder

    ce = CrossEncoder(model, bulk=True)
    s = ce.predict([(p.text_a, p.text_b) for p in pairs])
    y = np.array([int(p.label) for p in pairs])
    return {"accuracy": round(float(((s >= ce.threshold) == y).mean()), 4),
            "roc_auc": round(float(roc_auc_score(y, s)), 4), "threshold": round(float(ce.threshold), 4)}


def forget_set() -> list[Any]:
    return random.Random(SEED).sample(read(SHARED / "lcqmc/dev.tsv"), FORGET_PAIRS)


def pool_selection(init: str, name: str, pool: list[Any], cache: Path) -> tuple[Any, Any, float]:
    """The starting matcher's scores on the pool, cluster ids on the encoder's embeddings, its threshold
    (cached per init and domain)."""
    import numpy as np

    path = cache.parent / f"pool-{init.replace('/', '_')}-{name}.npz"
    if path.is_file():
        z = np.load(path)
        return z["scores"], z["groups"], float(z["threshold"])
    from simpair import BiEncoder, CrossEncoder
    from simpair.adaptation.mine import cluster_pairs

    ce = CrossEncoder(init, bulk=True)
    scores = ce.predict([(p.text_a, p.text_b) for p in pool], progress=True)
    bi = BiEncoder("encoder", bulk=True)
    emb_a, emb_b = bi.encode([p.text_a for p in pool]), bi.encode([p.text_b for p in pool])
    groups = cluster_pairs(emb_a, emb_b, 60, seed=0)
    np.savez(path, scores=scores, groups=groups, threshold=ce.threshold)
    return scores, groups, float(ce.threshold)


def pick(method: str, pool: list[Any], n: int, seed: int, selection: tuple[Any, Any, float]
         ) -> tuple[list[Any], list[str] | None]:
    """The labelled pairs and, for ``mined``, why each was picked (adapt holds out the random ``check`` ones)."""
    from simpair.adaptation.select import select_pairs

    if method == "random":
        return random.Random(seed).sample(pool, n), None
    scores, groups, threshold = selection
    if method == "mined-cal":
        return pick_calibrated(pool, n, seed, selection)
    spread_only = {"uncertain_share": 0.0} if method == "mined-spread" else {}  # no uncertainty part, else mine's own
    chosen = select_pairs([(p.text_a, p.text_b) for p in pool], scores, threshold, n, groups=groups, seed=seed,
                          **spread_only)
    return [pool[i] for i, _ in chosen], [why for _, why in chosen]


def pick_calibrated(pool: list[Any], n: int, seed: int, selection: tuple[Any, Any, float]
                    ) -> tuple[list[Any], list[str]]:
    """Two rounds, as ``simpair mine --check-share 1`` then ``mine --calibrate-on`` run them: the random check
    pairs are labelled first, the starting matcher's threshold is refitted on them (the logistic fit of
    :func:`simpair.adaptation.mine.refit_threshold`), and the rest is selected around that threshold, the check
    pairs left out of the candidates."""
    from simpair.adaptation.select import select_pairs
    from simpair.metrics import platt_threshold

    scores, groups, _ = selection
    checks = random.Random(seed).sample(range(len(pool)), round(0.2 * n))
    threshold = platt_threshold(scores[checks], [int(pool[i].label) for i in checks])
    taken = set(checks)
    rest = [i for i in range(len(pool)) if i not in taken]
    chosen = select_pairs([(pool[i].text_a, pool[i].text_b) for i in rest], scores[rest], threshold,
                          n - len(checks), groups=groups[rest], seed=seed, check_share=0.0)
    picked = [pool[i] for i in checks] + [pool[rest[j]] for j, _ in chosen]
    return picked, ["check"] * len(checks) + [why for _, why in chosen]


def adapt_point(init: str, labels: list[Any], seed: int, dev: list[Any], forget: list[Any], tmp: Path,
                why: list[str] | None = None, **options: Any) -> dict[str, Any]:
    """One adapt run on ``labels``, scored on dev and on the forgetting set; the model is deleted after."""
    from simpair.adaptation.adapt import AdaptOptions, adapt
    from simpair.readers.pairs import write_pairs

    path = write_pairs(tmp / "labels.tsv", labels, why)
    out = tmp / "model"
    t0 = time.time()
    report = adapt(path, out, AdaptOptions(init=init, seed=seed, resamples=500, **options))
    seconds = time.time() - t0
    row = {"dev": score(str(out), dev), "lcqmc": score(str(out), forget), "seconds": round(seconds, 1),
           "verdict": report["verdict"], "held_out": report["held_out"]["accuracy_gain"],
           "train_seconds": report["training"]["seconds"], "held_out_from": report["held_out_from"]}
    shutil.rmtree(out, ignore_errors=True)
    return row


def load_cache(cache: Path) -> dict[str, dict[str, Any]]:
    if not cache.is_file():
        return {}
    rows = [json.loads(line) for line in cache.read_text(encoding="utf-8").splitlines() if line.strip()]
    return {r["key"]: r for r in rows}


def append(cache: Path, row: dict[str, Any]) -> None:
    cache.parent.mkdir(parents=True, exist_ok=True)
    with cache.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(json.dumps(row, ensure_ascii=False), file=sys.stderr, flush=True)


def run_domain(args: argparse.Namespace, init: str, name: str, done: dict[str, Any], forget: list[Any]) -> None:
    train, dev = domain_data(name)
    pool = random.Random(SEED).sample(train, min(POOL, len(train)))
    key0 = f"{init}|{name}|zero-shot"
    if key0 not in done:
        append(args.cache, {"key": key0, "init": init, "domain": name, "n": 0, "method": "zero-shot",
                            "dev": score(init, dev), "lcqmc": score(init, forget), "seconds": 0.0})
    with tempfile.TemporaryDirectory(dir=args.cache.parent) as tmp:
        if args.specialist:
            key = f"{init}|{name}|specialist"
            if key not in done:
                epochs = 1.0 if len(train) > 10000 else 2.0
                row = adapt_point(init, train, 0, dev, forget, Path(tmp), replay_ratio=0.0, epochs=epochs)
                append(args.cache, {"key": key, "init": init, "domain": name, "n": len(train),
                                    "method": "specialist", **row})
            return
        selection = (pool_selection(init, name, pool, args.cache)
                     if any(m.startswith("mined") for m in args.methods) else None)
        for seed in args.seeds:
            for n in args.sizes:
                for method in args.methods:
                    key = f"{init}|{name}|{method}|{n}|{seed}"
                    if key in done or n > 0.7 * len(pool):
                        continue
                    labels, why = pick(method, pool, n, seed, selection)
                    row = adapt_point(init, labels, seed, dev, forget, Path(tmp), why, **args.options)
                    append(args.cache, {"key": key, "init": init, "domain": name, "n": n, "method": method,
                                        "seed": seed, **row, **args.options})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--init", nargs="+", default=["matcher-lcqmc"])
    ap.add_argument("--domains", nargs="+", default=list(DOMAINS), choices=list(DOMAINS))
    ap.add_argument("--sizes", nargs="+", type=int, default=[100, 300, 1000])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0])
    ap.add_argument("--methods", nargs="+", default=["random", "mined"], choices=["random", "mined", "mined-cal", "mined-spread"])
    ap.add_argument("--specialist", action="store_true", help="Only the ceiling: adapt on the whole train file.")
    ap.add_argument("--cache", type=Path, default=ROOT / "runs" / "adaptation" / "points.jsonl")
    ap.add_argument("--learning-rate", type=float, default=None, help="adapt's learning rate (default: its own).")
    ap.add_argument("--epochs", type=float, default=None, help="adapt's epochs (default: its own rule).")
    ap.add_argument("--report-only", action="store_true", help="Summarise the cache; train nothing.")
    ap.add_argument("--save", default=None)
    ap.add_argument("--plot", default=None)
    args = ap.parse_args()
    args.options = {k: v for k, v in (("learning_rate", args.learning_rate), ("epochs", args.epochs)) if v is not None}
    if not args.report_only:
        if not SHARED.is_dir():
            sys.exit(f"needs {SHARED} (the shared research data)")
        forget = forget_set()
        for init in args.init:
            for name in args.domains:
                run_domain(args, init, name, load_cache(args.cache), forget)
    from _adaptation import plot, summarise
    from _common import emit

    summary = summarise(list(load_cache(args.cache).values()))
    if args.plot:
        plot(summary, args.plot)
    emit({"benchmark": "adaptation", "pool": POOL, "dev_pairs": DEV_PAIRS, "forgetting_pairs": FORGET_PAIRS,
          "model": args.init[0], **summary}, args.save)


if __name__ == "__main__":
    main()
