"""Derived training pairs against the matcher's lexical-overlap bias (issue 17): read labelled pair files, write
new 0/1 pair files for ``simpair train`` (outside git: they are made from research data).

Two derivations, both standard for question-pair corpora, and one re-weighting:

* ``transitive``: within one file, questions joined by positive pairs ask the same thing, so two questions of
  one group that no pair links are a new positive — usually with fewer shared words than the labelled ones,
  the kind the matcher misses. A negative pair (u, v) also makes (u', v) negative for every u' of u's group
  (unless v is in that group: the labels disagree, and the pair is skipped).
* ``contrast``: in a positive pair, a word of a contrast list (raise/lower, open/close, transfer in/out,
  today/tomorrow, ...) that both sides contain is swapped in the second side: the two now differ in the one
  word that decides the question — a negative with high overlap, the other half of the bias.

* ``against_overlap``: no new label, a re-weighting — the labelled pairs of each file that word overlap alone
  gets wrong (positives under the file's best overlap cut, negatives at or over it), so that a pass can weight
  up the pairs where the overlap shortcut fails (as in debiasing by example weighting against a bias-only model).

Also ``--sts FILE``: a 0-5 score file (ChineseSTS, STS-B train) written as 0/1 (>= 4 same, <= 1 different, the
middle dropped). Every output row is ``text_a<TAB>text_b<TAB>label`` with a header; caps and a seed keep runs
repeatable.

    python scripts/augment_pairs.py --out runs/aug ../shared/data/lcqmc/train.tsv ../shared/data/bq/train.tsv ...
"""
from __future__ import annotations

import argparse
import random
import re
import sys
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path

from simpair import read_pairs
from simpair.cross_encoder import decide
from simpair.errors import SimpairError
from simpair.training.debias import overlap

# word, contrast word: swapped both ways. Written for this script; words of runs/handcheck*.tsv (the hand-written
# check pairs) were left out on purpose, so that check still measures what the idea generalises to.
CONTRASTS_ZH = [
    ("提高", "降低"), ("增加", "减少"), ("上调", "下调"), ("开通", "注销"), ("开启", "关闭"), ("转入", "转出"),
    ("存款", "取款"), ("借款", "还款"), ("买入", "卖出"), ("购买", "出售"), ("登录", "注册"), ("绑定", "解绑"),
    ("冻结", "解冻"), ("开户", "销户"), ("今天", "明天"), ("昨天", "明天"), ("早上", "晚上"), ("上午", "下午"),
    ("最高", "最低"), ("最多", "最少"), ("成功", "失败"), ("收款", "付款"), ("男性", "女性"), ("男生", "女生"),
    ("成人", "儿童"), ("上涨", "下跌"), ("升级", "降级"), ("加入", "退出"), ("添加", "移除"), ("上传", "下载"),
    ("发送", "接收"), ("进口", "出口"), ("开始", "结束"), ("以前", "以后"), ("之前", "之后"), ("第一次", "最后一次"),
    ("夏天", "冬天"), ("春天", "秋天"), ("南方", "北方"), ("白天", "晚上"), ("个人", "企业"), ("国内", "国外"),
    ("线上", "线下"), ("电脑", "手机"), ("苹果", "安卓"), ("本人", "他人"), ("自己", "别人"), ("多少钱", "多长时间"),
    ("年费", "利息"), ("分期", "全额"), ("逾期", "提前"), ("有用", "没用"),
]
CONTRASTS_EN = [
    ("increase", "decrease"), ("buy", "sell"), ("before", "after"), ("log in", "sign up"), ("cancel", "renew"),
    ("add", "remove"), ("enable", "disable"), ("upload", "download"), ("send", "receive"), ("import", "export"),
    ("start", "stop"), ("win", "lose"), ("men", "women"), ("first", "last"), ("maximum", "minimum"),
    ("yesterday", "tomorrow"), ("morning", "evening"), ("hot", "cold"), ("north", "south"), ("summer", "winter"),
    ("higher", "lower"), ("more", "less"), ("best", "worst"), ("cheap", "expensive"), ("can", "cannot"),
]


def read_labelled(path: Path) -> list[tuple[str, str, int]]:
    """The 0/1 pairs of a pair file, read and checked by simpair's own reader (any format it reads)."""
    return [(p.text_a, p.text_b, int(p.label)) for p in read_pairs(path, task="classification", warn=False).pairs]


def groups(rows: Iterable[tuple[str, str, int]]) -> dict[str, str]:
    """Each question's group root: union-find over the positive pairs."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b, label in rows:
        find(a), find(b)
        if label == 1 and a != b:
            parent[find(a)] = find(b)
    return {x: find(x) for x in parent}


def transitive(rows: Sequence[tuple[str, str, int]], per_group: int, rng: random.Random) -> list[tuple[str, str, int]]:
    """New positives inside groups (at most ``per_group`` each) and negatives carried across groups (one per
    labelled negative): pairs already in ``rows`` are never repeated."""
    root = groups(rows)
    members: dict[str, list[str]] = defaultdict(list)
    for q, r in root.items():
        members[r].append(q)
    seen = {frozenset((a, b)) for a, b, _ in rows}
    out: list[tuple[str, str, int]] = []
    for group in members.values():
        if len(group) < 3:
            continue
        candidates = [(a, b) for i, a in enumerate(group) for b in group[i + 1:] if frozenset((a, b)) not in seen]
        for a, b in rng.sample(candidates, min(per_group, len(candidates))):
            out.append((a, b, 1))
    for a, b, label in rows:
        if label != 0 or root[a] == root[b]:
            continue
        others = [q for q in members[root[a]] if q != a and frozenset((q, b)) not in seen]
        if others:
            out.append((rng.choice(others), b, 0))
    return out


def against_overlap(rows: Sequence[tuple[str, str, int]]) -> list[tuple[str, str, int]]:
    """The rows a bias-only rule gets wrong: "same when overlap >= t", with t the cut that is right most often
    on these rows (the lowest such cut; `simpair.metrics.best_threshold` breaks ties towards 0.5 instead, which
    would change the file pass 6 was trained on). Returns the positives under t and the negatives at or over it,
    labels unchanged."""
    values = [overlap(a, b) for a, b, _ in rows]
    scored = sorted(zip(values, (label for _, _, label in rows)))
    positives_below, negatives_at_or_above = 0, sum(1 - label for _, label in scored)
    best_errors, cut = positives_below + negatives_at_or_above, float("-inf")
    for i, (value, label) in enumerate(scored):  # cut just above scored[i]: rows 0..i are called different
        positives_below += label
        negatives_at_or_above -= 1 - label
        if i + 1 < len(scored) and scored[i + 1][0] == value:
            continue  # a cut must fall between two distinct values
        errors = positives_below + negatives_at_or_above
        if errors < best_errors:
            best_errors, cut = errors, scored[i + 1][0] if i + 1 < len(scored) else float("inf")
    return [row for row, value in zip(rows, values) if decide(value, cut) != bool(row[2])]


def _pattern(word: str) -> re.Pattern[str]:
    """English: the word, whole and in any case; Chinese: the characters anywhere."""
    return re.compile(rf"\b{re.escape(word)}\b", re.IGNORECASE) if word.isascii() else re.compile(re.escape(word))


def contrast(rows: Sequence[tuple[str, str, int]], pairs: Sequence[tuple[str, str]],
             rng: random.Random) -> list[tuple[str, str, int]]:
    """Negatives from positives: a contrast word both sides share, its first place swapped in the second side
    (one swap per pair); both (a, b') and (b, b') are written."""
    table = [(_pattern(w), o) for w, o in pairs] + [(_pattern(o), w) for w, o in pairs]
    out = []
    for a, b, label in rows:
        if label != 1:
            continue
        hits = [(p, o) for p, o in table if p.search(a) and p.search(b)]
        if hits:
            pattern, other = rng.choice(hits)
            swapped = pattern.sub(other, b, count=1)
            out += [(a, swapped, 0), (b, swapped, 0)]
    return out


def read_sts(path: Path) -> list[tuple[str, str, int]]:
    """A 0-5 score file (ChineseSTS, the STS-benchmark layout, ...: whatever simpair's reader takes) as 0/1."""
    pairs = read_pairs(path, task="regression", warn=False).pairs
    return [(p.text_a, p.text_b, int(p.label >= 4)) for p in pairs if p.label >= 4 or p.label <= 1]


def write(path: Path, rows: Sequence[tuple[str, str, int | str]], column: str = "label") -> None:
    """Rows as a tab-separated file with a header (the third column named ``column``), written aside then renamed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        f.write(f"text_a\ttext_b\t{column}\n")
        for a, b, label in rows:  # the reader splits on tabs and lines: no text holds either
            f.write(f"{a}\t{b}\t{label}\n")
    tmp.replace(path)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", type=Path, help="0/1 pair files (each one group space)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--sts", type=Path, action="append", default=[], help="0-5 score files to write as 0/1")
    parser.add_argument("--exclude", type=Path, action="append", default=[],
                        help="pair files (dev sets) whose pairs, either order, must not be written")
    parser.add_argument("--per-group", type=int, default=2, help="new positives per group at most")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except (OSError, SimpairError) as exc:  # every file is read before any is written: nothing half-written
        print(f"error: {exc}", file=sys.stderr)
        return 2


def run(args: argparse.Namespace) -> int:
    """Read every input, derive, then write the four files."""
    rng = random.Random(args.seed)
    derived, swapped, hard = [], [], []
    for path in args.files:
        rows = read_labelled(path)
        new = transitive(rows, args.per_group, rng)
        derived += new
        swapped += contrast(rows, CONTRASTS_ZH + CONTRASTS_EN, rng)
        wrong = against_overlap(rows)
        hard += wrong
        print(f"{path}: {len(rows)} rows -> {sum(r[2] for r in new)} transitive positives, "
              f"{sum(1 - r[2] for r in new)} negatives; overlap alone wrong on {len(wrong)}", file=sys.stderr)
    sts = [row for path in args.sts for row in read_sts(path)]
    swapped += contrast(sts, CONTRASTS_ZH + CONTRASTS_EN, rng)
    banned = {frozenset((a, b)) for path in args.exclude for a, b, _ in read_labelled(path)}
    outputs = (("transitive", derived), ("contrast", swapped), ("sts", sts), ("against_overlap", hard))
    for name, rows in outputs:
        rows = [r for r in rows if frozenset(r[:2]) not in banned]
        if rows:
            rng.shuffle(rows)
            write(args.out / f"{name}.tsv", rows)
            print(f"{args.out / name}.tsv: {len(rows)} pairs, {sum(r[2] for r in rows)} positive", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
