"""The summary and the picture of ``benchmarks/adaptation.py``: mean and spread over seeds per point, the
issue's targets checked against them, and the curves (one panel per domain)."""
from __future__ import annotations

from collections import defaultdict
from statistics import mean, pstdev
from typing import Any

METRICS = (("dev", "accuracy"), ("dev", "roc_auc"), ("lcqmc", "accuracy"), ("lcqmc", "roc_auc"))


def _point(rows: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {"seeds": len(rows), "seconds": round(mean(r["seconds"] for r in rows), 1)}
    for part, metric in METRICS:
        values = [r[part][metric] for r in rows]
        out[f"{part}_{metric}"] = round(mean(values), 4)
        out[f"{part}_{metric}_std"] = round(pstdev(values), 4) if len(values) > 1 else None
    return out


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """{init: {domain: {"zero-shot": point, "specialist": point, "random": {n: point}, "mined": {n: point}}}}
    and the targets."""
    groups: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        groups[(r["init"], r["domain"], r["method"], r["n"])].append(r)
    curves: dict[str, Any] = defaultdict(lambda: defaultdict(dict))
    for (init, domain, method, n), rs in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][2], kv[0][3])):
        point = {"n": n, **_point(rs)}
        if method in ("zero-shot", "specialist"):
            curves[init][domain][method] = point
        else:
            curves[init][domain].setdefault(method, {})[str(n)] = point
    curves = {i: dict(d) for i, d in curves.items()}
    return {"curves": curves, "targets": targets(curves)}


def _mean_over(curves: dict[str, Any], domains: list[str], get: Any) -> float | None:
    values = [get(curves[d]) for d in domains]
    return round(mean(values), 4) if values and None not in values else None


def _acc(d: dict[str, Any], method: str, n: int) -> float | None:
    p = d.get(method, {}).get(str(n)) if method in ("random", "mined") else d.get(method)
    return p["dev_accuracy"] if p else None


def targets(curves: dict[str, Any]) -> dict[str, Any]:
    """The issue's three measurable targets, each with the figures it was decided on (None: not measured yet)."""
    out: dict[str, Any] = {}
    lc = curves.get("matcher-lcqmc", {})
    domains = sorted(lc)
    if domains:
        mined_1k = _mean_over(lc, domains, lambda d: _acc(d, "mined", 1000))
        ceiling = _mean_over(lc, domains, lambda d: _acc(d, "specialist", 0))
        out["lcqmc_1k_mined_within_2pt_of_specialists"] = {
            "domains": domains, "mean_mined_1k": mined_1k, "mean_specialist": ceiling,
            "met": None if mined_1k is None or ceiling is None else mined_1k >= ceiling - 0.02}
        m300 = _mean_over(lc, domains, lambda d: _acc(d, "mined", 300))
        r300 = _mean_over(lc, domains, lambda d: _acc(d, "random", 300))
        out["lcqmc_300_mined_1pt_above_random"] = {
            "mean_mined_300": m300, "mean_random_300": r300,
            "met": None if m300 is None or r300 is None else m300 >= r300 + 0.01}
    gm = curves.get("matcher", {})
    if gm:
        rows = {d: (_acc(v, "zero-shot", 0), _acc(v, "mined", 1000), _acc(v, "random", 1000)) for d, v in gm.items()}
        out["matcher_1k_raises_every_domain"] = {
            "per_domain": {d: {"zero_shot": z, "mined_1k": m, "random_1k": r} for d, (z, m, r) in rows.items()},
            "met": None if any(z is None or m is None for z, m, _ in rows.values())
            else all(m > z for z, m, _ in rows.values())}
    return out


def plot(summary: dict[str, Any], path: str) -> None:
    """Dev accuracy against labels, one panel per domain: each init's random and mined curves (mean ± spread),
    its zero-shot point, and the specialist ceiling as a dashed line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves = summary["curves"]
    domains = sorted({d for per in curves.values() for d in per})
    cols = 3
    fig, axes = plt.subplots((len(domains) + cols - 1) // cols, cols, figsize=(13, 7.5), squeeze=False)
    colours = {"matcher-lcqmc": "tab:blue", "matcher": "tab:orange"}
    for ax, domain in zip(axes.flat, domains):
        for init, per in curves.items():
            d = per.get(domain)
            if not d:
                continue
            c = colours.get(init, "tab:gray")
            zero = d.get("zero-shot")
            for method, style in (("random", ":"), ("mined", "-")):
                pts = sorted(d.get(method, {}).values(), key=lambda p: p["n"])
                if zero:
                    pts = [{**zero, "n": 30}] + pts  # zero labels drawn at the left edge of the log axis
                if len(pts) > 1:
                    ax.errorbar([p["n"] for p in pts], [p["dev_accuracy"] for p in pts],
                                yerr=[p["dev_accuracy_std"] or 0 for p in pts], ls=style, marker="o", ms=3,
                                color=c, capsize=2, label=f"{init} {method}")
            if d.get("specialist"):
                ax.axhline(d["specialist"]["dev_accuracy"], color=c, ls="--", lw=0.8,
                           label=f"{init} full train ({d['specialist']['n']:,})")
        ax.set_xscale("log")
        ax.set_xticks([30, 100, 300, 1000, 3000], ["0", "100", "300", "1k", "3k"])
        ax.set_title(domain)
        ax.set_xlabel("labelled pairs")
        ax.set_ylabel("dev accuracy")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(domains):]:
        ax.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=8)
    fig.suptitle("simpair adapt: accuracy on a domain's dev pairs after n labels (mean ± spread over seeds)")
    fig.tight_layout(rect=(0, 0.07, 1, 0.96))
    fig.savefig(path, dpi=110)
    plt.close(fig)
