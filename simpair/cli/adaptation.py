"""The adaptation loop's commands: ``mine`` (pairs worth labelling), ``label`` (answer them in the terminal)
and ``adapt`` (a calibrated in-domain matcher from the answers)."""
from __future__ import annotations

from typing import Any

import click

from .app import emit, main, print_table, runtime_options

KEYS = {"s": "same", "y": "same", "1": "same", "d": "different", "n": "different", "0": "different",
        "k": "skip", " ": "skip"}


@main.command()
@click.argument("questions")
@click.option("--out", required=True, help="The TSV of pairs to label (written atomically).")
@click.option("-n", "n", type=click.IntRange(min=1), default=300, show_default=True, help="Pairs to select.")
@click.option("--model", default=None, help="The matcher that scores the candidates (default: the default matcher).")
@click.option("--encoder", default=None, help="The bi-encoder that finds neighbours (default: the bundled encoder).")
@click.option("-k", "k", type=click.IntRange(min=1), default=5, show_default=True,
              help="Bi-encoder neighbours per question.")
@click.option("--lexical-k", type=click.IntRange(min=0), default=3, show_default=True,
              help="Character n-gram neighbours per question (0: none).")
@click.option("--check-share", type=click.FloatRange(0, 1), default=0.2, show_default=True,
              help="Share of the pairs drawn at random, which adapt holds out to set the threshold and report "
              "(1: all of them, a first round for --calibrate-on).")
@click.option("--calibrate-on", default=None, help="Labelled pairs of this domain (a first round's random checks): "
              "refit the matcher's threshold on them before picking, and do not pick them again.")
@click.option("--seed", type=int, default=0, show_default=True)
@runtime_options
@click.option("--json", "as_json", is_flag=True)
def mine(questions: str, out: str, n: int, model: str | None, encoder: str | None, k: int, lexical_k: int,
         check_share: float, calibrate_on: str | None, seed: int, backend: str, precision: str, threads: int | None,
         as_json: bool) -> None:
    """Pick the pairs of QUESTIONS (one a line, or a corpus .tsv/.jsonl) most worth labelling."""
    from ..adaptation.mine import mine as run_mine

    result = run_mine(questions, out, n=n, model=model, encoder=encoder, k=k, lexical_k=lexical_k,
                      check_share=check_share, calibrate_on=calibrate_on, seed=seed, progress=not as_json,
                      backend=backend, precision=precision, threads=threads)

    def render(r: dict[str, Any]) -> None:
        rows = [("questions", r["questions"]), ("candidate pairs", r["candidates"]), ("selected", r["selected"])]
        rows += [(f"  {why}", count) for why, count in r["why"].items()]
        cal = r["calibrated_on"]
        rows.append(("threshold", f"{r['threshold']:.4f}" + (f" (refitted on {cal['pairs']} labelled pairs; stored "
                                                               f"{r['stored_threshold']:.4f})" if cal else "")))
        rows += [("clusters", r["clusters"]), ("matcher", r["model"]), ("encoder", r["encoder"]),
                 ("written", r["out"]), ("seconds", r["seconds"])]
        print_table(f"simpair mine {questions}", rows)
        click.echo(f"next: simpair label {r['out']}")

    emit(result, as_json, render)


@main.command()
@click.argument("pairs")
@click.option("--out", default=None, help="Where the answers go (default: PAIRS with .labelled.tsv).")
def label(pairs: str, out: str | None) -> None:
    """Label the pairs of PAIRS in the terminal, one key per answer: s same, d different, k skip, u undo,
    q quit. Resumes where it stopped; every answer is on disk at once."""
    from ..adaptation.labels import LabelSession

    session = LabelSession(pairs, out)
    while True:
        state = session.state()
        item, prog = state["item"], state["progress"]
        if item is None:
            break
        click.echo(f"\n[{prog['answered'] + 1}/{prog['total']}]  same {prog['same']} · different "
                   f"{prog['different']} · skipped {prog['skip']}")
        click.echo(f"  A: {item['text_a']}\n  B: {item['text_b']}")
        click.echo("  [s]ame  [d]ifferent  [k] skip  [u]ndo  [q]uit ", nl=False)
        key = click.getchar().lower()
        click.echo(key.strip())
        if key in ("q", "\x03", "\x04"):
            break
        if key == "u":
            session.undo()
        elif key in KEYS:
            session.answer(item["index"], KEYS[key])
        else:
            click.echo("  (s, d, k, u or q)")
    prog = session.progress()
    click.echo(f"\n{prog['same'] + prog['different']} answers in {prog['out']} ({prog['left']} pairs left)")
    if prog["same"] + prog["different"]:
        click.echo(f"next: simpair adapt {prog['out']} --out DIR")


@main.command()
@click.argument("labelled", nargs=-1, required=True)
@click.option("--out", required=True, help="The adapted model's directory (written atomically).")
@click.option("--init", default=None, help="The matcher to continue (default: the default matcher).")
@click.option("--replay", multiple=True, help="General labelled pairs replayed against forgetting (repeat; "
              "default: simpair's own general sample). Your own general data fits best.")
@click.option("--replay-ratio", type=click.FloatRange(min=0), default=1.0, show_default=True,
              help="Replayed pairs per training label.")
@click.option("--check", multiple=True, help="General labelled pairs to measure forgetting on (repeat; default: "
              "simpair's own general check sample).")
@click.option("--held-out", type=click.FloatRange(0.05, 0.5), default=0.2, show_default=True,
              help="Share of the labels kept out of training (20 to 500 pairs): threshold and before/after. "
              "Unused when the file holds at least 20 of mine's random check pairs: those are held out.")
@click.option("--epochs", type=float, default=None, help="Default: 4 under 500 training labels, 3 under 2,000, "
              "else 2.")
@click.option("--learning-rate", type=float, default=None, help="Default: adapt's own (see docs/adaptation.md).")
@click.option("--seed", type=int, default=0, show_default=True)
@runtime_options
@click.option("--json", "as_json", is_flag=True)
def adapt(labelled: tuple[str, ...], out: str, init: str | None, replay: tuple[str, ...], replay_ratio: float,
          check: tuple[str, ...], held_out: float, epochs: float | None, learning_rate: float | None, seed: int,
          backend: str, precision: str, threads: int | None, as_json: bool) -> None:
    """Continue the matcher on LABELLED pairs (one file or several, e.g. a first round's checks and the second
    round's picks), calibrate it, and say whether it got better."""
    from ..adaptation.adapt import AdaptOptions
    from ..adaptation.adapt import adapt as run_adapt

    opts = AdaptOptions(init=init, replay=list(replay) or None, replay_ratio=replay_ratio, check=list(check) or None,
                        held_out=held_out, epochs=epochs, seed=seed)
    if learning_rate is not None:
        opts.learning_rate = learning_rate
    result = run_adapt(labelled[0] if len(labelled) == 1 else list(labelled), out, opts, progress=not as_json, backend=backend, precision=precision,
                       threads=threads)
    emit(result, as_json, _render_adapt)


def _render_adapt(r: dict[str, Any]) -> None:
    h = r["held_out"]
    acc, auc = h["accuracy_gain"], h["roc_auc_gain"]
    rows = [("started from", r["init"]), ("trained on", f"{r['training']['labels']} labels + "
                                                        f"{r['training']['replayed']} replayed general pairs"),
            ("held out", f"{r['held_out_pairs']} ({r['held_out_from']})"),
            ("accuracy before → after", f"{h['accuracy_before']:.4f} → {h['accuracy_after']:.4f} "
                                        f"({acc['gain']:+.4f}, 95% CI {acc['low']:+.4f} to {acc['high']:+.4f})"),
            ("ROC-AUC gain", f"{auc['gain']:+.4f} (95% CI {auc['low']:+.4f} to {auc['high']:+.4f})"),
            ("verdict", r["verdict"]), ("threshold", r["threshold"])]
    rows += [(f"forgetting: {path}", f"{f['accuracy_before']:.4f} → {f['accuracy_after']:.4f} on {f['pairs']} pairs")
             for path, f in r["forgetting"].items()]
    rows += [("model", r["out"]), ("seconds", r["seconds"])]
    print_table(f"simpair adapt {r['labelled']}", rows)
    click.echo(f"use it: simpair match --model {r['out']} \"q1\" \"q2\"  (or simpair models --use {r['out']})")
