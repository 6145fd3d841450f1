"""Build data/train.tsv, data/dev.tsv and data/corpus.tsv from the hand-written groups in data/source.

Positives: every pair of paraphrases inside a group. Negatives: members of neighbouring groups in
the same topic cluster (hard: shared words, different intent) and of a random other cluster (easy).
Groups are split train/dev so that dev questions are never seen in training. Deterministic.
Also writes simpair/backend/calibration.tsv, the first CALIBRATION training pairs: the sample pairs
that set the activation ranges of an int8 OpenVINO export when the user gives none (package data); and
simpair/adaptation/general-train.tsv and general-check.tsv, copies of train and dev: the general pairs that
``simpair adapt`` replays (against forgetting) and checks forgetting on when the user gives none.
Run: python data/build_sample.py
"""
from __future__ import annotations

import itertools
import random
from pathlib import Path

HERE = Path(__file__).resolve().parent
SEED = 13
DEV_EVERY = 5  # every 5th cluster goes to dev
CALIBRATION = 256


def read_clusters(path: Path) -> list[list[list[str]]]:
    clusters: list[list[list[str]]] = [[]]
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            continue
        if not line.strip():
            if clusters[-1]:
                clusters.append([])
            continue
        clusters[-1].append([q.strip() for q in line.split("|") if q.strip()])
    return [c for c in clusters if c]


def pairs_for(clusters: list[list[list[str]]], rng: random.Random) -> list[tuple[str, str, int]]:
    out: list[tuple[str, str, int]] = []
    for ci, cluster in enumerate(clusters):
        for gi, group in enumerate(cluster):
            for a, b in itertools.combinations(group, 2):
                out.append((a, b, 1) if rng.random() < 0.5 else (b, a, 1))
            for other in cluster[gi + 1 :]:  # hard negatives: same cluster, different intent
                for a in group[:2]:
                    out.append((a, rng.choice(other), 0))
            others = [g for cj, c in enumerate(clusters) if cj != ci for g in c]
            out.append((rng.choice(group), rng.choice(rng.choice(others)), 0))  # an easy negative
    rng.shuffle(out)
    return out


def main() -> None:
    rng = random.Random(SEED)
    train: list[tuple[str, str, int]] = []
    dev: list[tuple[str, str, int]] = []
    questions: list[str] = []
    for name in ("groups-zh.txt", "groups-en.txt"):
        clusters = read_clusters(HERE / "source" / name)
        questions += [q for c in clusters for g in c for q in g]
        dev_clusters = [c for i, c in enumerate(clusters) if i % DEV_EVERY == DEV_EVERY - 1]
        train_clusters = [c for i, c in enumerate(clusters) if i % DEV_EVERY != DEV_EVERY - 1]
        train += pairs_for(train_clusters, rng)
        dev += pairs_for(dev_clusters, rng)
    rng.shuffle(train)
    rng.shuffle(dev)
    for split, rows in (("train", train), ("dev", dev)):
        lines = ["text_a\ttext_b\tlabel"] + [f"{a}\t{b}\t{y}" for a, b, y in rows]
        (HERE / f"{split}.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    for split in ("train", "dev"):
        text = (HERE / f"{split}.tsv").read_text(encoding="utf-8")
        name = "general-train.tsv" if split == "train" else "general-check.tsv"
        (HERE.parent / "simpair" / "adaptation" / name).write_text(text, encoding="utf-8")
    calibration = HERE.parent / "simpair" / "backend" / "calibration.tsv"
    calibration.write_text("".join(f"{a}\t{b}\t{y}\n" for a, b, y in train[:CALIBRATION]), encoding="utf-8")
    extra = [q for q in (HERE / "source" / "corpus-extra.txt").read_text(encoding="utf-8").splitlines()
             if q.strip() and not q.startswith("#")]
    corpus = list(dict.fromkeys(questions + extra))
    (HERE / "corpus.tsv").write_text(
        "id\ttext\n" + "".join(f"q{i:04d}\t{q}\n" for i, q in enumerate(corpus)), encoding="utf-8"
    )
    print(f"train {len(train)} pairs, dev {len(dev)} pairs, corpus {len(corpus)} questions")


if __name__ == "__main__":
    main()
