"""The benchmark helpers that turn timings into the README's claims: peer ratios and the roofline."""
from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks" / "probes"))

import _peers
import _roofline


def test_flops_per_token_counts_dense_layers_and_attention() -> None:
    config = SimpleNamespace(hidden_size=4, intermediate_size=8, num_hidden_layers=2)
    # per layer: Q, K, V, O (4 * 4*4) + FFN in and out (2 * 4*8) = 128 MACs; attention at length 3: 2*3*4 = 24
    assert _roofline.flops_per_token(config, 3) == 2 * 2 * (128 + 24)


def test_roofline_reports_mean_length_and_share_of_peak(tiny_bert: Path) -> None:
    out = _roofline.roofline(str(tiny_bert), [("a b", "c"), ("d", "e f g")], 16, {"fast": 1e6})
    assert out["peak_gflop_per_second"] == _roofline.PEAK
    achieved = out["achieved"]["fast"]
    assert achieved["gflop_per_second"] == pytest.approx(out["gflop_per_input"] * 1e6, rel=1e-2)
    assert achieved["share_of_peak"]["int8"] == pytest.approx(achieved["gflop_per_second"] / _roofline.PEAK["int8"],
                                                           abs=1e-3)
    assert out["mean_tokens"] > 2


def test_best_ratio_compares_the_fastest_rows() -> None:
    results = {"sentence-transformers torch-fp32": {"rate": 100.0}, "sentence-transformers onnx-int8": {"rate": 300.0},
               "simpair torch bf16": {"rate": 450.0}, "simpair torch int8": {"rate": 600.0},
               "plain transformers": {"rate": 900.0}}
    out = _peers.best_ratio(results, "rate")
    assert out["best_simpair"] == "simpair torch int8"
    assert out["best_sentence_transformers"] == "sentence-transformers onnx-int8"
    assert out["ratio"] == 2.0 and "equal_quality" not in out


def test_best_ratio_at_equal_quality_leaves_out_rows_that_lose_accuracy() -> None:
    results = {"sentence-transformers torch-fp32": {"rate": 100.0, "accuracy": 0.890},
               "sentence-transformers onnx-int8": {"rate": 300.0, "accuracy": 0.879},  # -1.1 points
               "sentence-transformers openvino-fp32": {"rate": 250.0, "accuracy": 0.891},
               "simpair openvino int8": {"rate": 500.0, "accuracy": 0.8925},
               "simpair torch int8 (all layers)": {"rate": 900.0, "accuracy": 0.885}}
    out = _peers.best_ratio(results, "rate", {"accuracy": 0.003})
    assert out["ratio"] == 3.0  # the fastest rows, whatever they lose
    eq = out["equal_quality"]
    assert eq["best_sentence_transformers"] == "sentence-transformers openvino-fp32"
    assert eq["best_simpair"] == "simpair openvino int8" and eq["ratio"] == 2.0


def test_head_to_head_alternates_who_goes_first_and_pairs_the_rounds() -> None:
    calls: list[str] = []
    seconds = iter([1.0, 2.0, 4.0,  # round 1: ours a, ours b, theirs
                    2.0, 4.0, 1.0,  # round 2, reversed: theirs, ours b, ours a
                    1.0, 2.0, 2.0])

    def pass_of(name: str):
        def run() -> float:
            calls.append(name)
            return next(seconds)
        return run

    out = _peers.head_to_head(3, {"a": pass_of("a"), "b": pass_of("b")}, {"p": pass_of("p")}, items=100)
    assert calls == ["a", "b", "p", "p", "b", "a", "a", "b", "p"]
    assert out["rates"] == {"a": [100.0, 100.0, 100.0], "b": [50.0, 25.0, 50.0], "p": [25.0, 50.0, 50.0]}
    # per round, the fastest of ours over the fastest of theirs: 4, 2, 2
    assert out["best_against_best"] == {"per_round": [4.0, 2.0, 2.0], "median": 2.0, "min": 2.0, "max": 4.0}
    assert out["ratios"]["b / p"]["per_round"] == [2.0, 0.5, 1.0]


def test_contenders_keep_every_row_near_its_sides_fastest_and_its_equal_quality_best() -> None:
    results = {"sentence-transformers torch-fp32": {"rate": 100.0}, "sentence-transformers torch-bf16": {"rate": 240.0},
               "sentence-transformers onnx-int8": {"rate": 210.0}, "sentence-transformers openvino-fp32": {"rate": 140.0},
               "simpair openvino int8": {"rate": 350.0}, "simpair openvino bf16": {"rate": 400.0},
               "simpair torch fp32": {"rate": 100.0}}
    summary = {"equal_quality": {"best_sentence_transformers": "sentence-transformers torch-fp32",
                                 "best_simpair": "simpair openvino bf16"}}
    assert _peers.contenders(summary, results, "rate", "sentence-transformers") == [
        "sentence-transformers torch-bf16", "sentence-transformers onnx-int8", "sentence-transformers openvino-fp32",
        "sentence-transformers torch-fp32"]
    assert _peers.contenders(summary, results, "rate", "simpair") == ["simpair openvino bf16", "simpair openvino int8"]
    assert _peers.contenders({}, results, "rate", "sentence-transformers", share=0.8) == [
        "sentence-transformers torch-bf16", "sentence-transformers onnx-int8"]


def test_head_to_head_of_a_sweep_times_each_sides_contenders_by_their_config() -> None:
    results = {"simpair openvino int8": {"rate": 10.0}, "simpair torch fp32": {"rate": 2.0},
               "sentence-transformers onnx-int8": {"rate": 8.0}}
    loaded: list[str] = []
    peers: list[str] = []

    def ours(name: str):
        loaded.append(name)
        return lambda: 1.0

    def theirs(config: str) -> float:
        peers.append(config)
        return 2.0

    out = _peers.head_to_head_of({}, results, "rate", 2, 10, ours, theirs)
    assert loaded == ["simpair openvino int8"]  # loaded once, the slow row left out
    assert peers == ["onnx-int8", "onnx-int8"]
    assert out["best_against_best"]["median"] == 2.0


def test_a_peer_without_its_environment_is_skipped_with_the_reason(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(_peers.PYTHONS, "onnx", tmp_path / "missing" / "bin" / "python")
    out = _peers.run_peer("cross", "onnx-int8", tmp_path, {"pairs": []}, 32, 64, 1)
    assert "make peers" in out["skipped"]


def test_a_retrieval_set_from_pairs_links_each_text_to_its_positive_partners(tmp_path: Path) -> None:
    import rerank_fusion_probe

    f = tmp_path / "pairs.tsv"
    f.write_text("text_a\ttext_b\tlabel\n怎么提额\t如何提高额度\t1\n怎么提额\t怎么还款\t0\n"
                 "如何提高额度\t额度怎么提高\t1\n还款日\t还款日\t1\n", encoding="utf-8")
    corpus, queries = rerank_fusion_probe.from_pairs(f)
    id_of = {e.text: e.id for e in corpus}
    assert sorted(id_of) == sorted(["怎么提额", "如何提高额度", "怎么还款", "额度怎么提高", "还款日"])
    assert len(set(id_of.values())) == 5
    rel = {q: r for q, r, _ in queries}
    assert rel == {"怎么提额": {id_of["如何提高额度"]}, "如何提高额度": {id_of["怎么提额"], id_of["额度怎么提高"]},
                   "额度怎么提高": {id_of["如何提高额度"]}}  # a text paired with itself is no query


def test_pair_fusion_gains_only_from_a_cosine_that_carries_information() -> None:
    import numpy as np
    import pair_fusion_probe

    rng = np.random.default_rng(0)

    def sets(informative: bool) -> dict:
        out = {}
        for name in ("A", "B"):
            y = rng.integers(0, 2, 2000)
            logit = 2.0 * y + rng.normal(0, 1.5, y.size)
            cos = 0.8 + (0.05 * y if informative else 0) + rng.normal(0, 0.04, y.size)
            out[name] = (np.c_[logit, cos], y)
        return out

    for informative in (True, False):
        data = sets(informative)
        alone = pair_fusion_probe.held_out(data, [0], seed=1)
        fused = pair_fusion_probe.held_out(data, [0, 1], seed=1)
        gain = np.mean([fused[k]["roc_auc"] - alone[k]["roc_auc"] for k in data])
        assert (gain > 0.03) if informative else (abs(gain) < 0.01)
        assert all(0.6 < alone[k]["accuracy"] < 0.9 for k in data)



def test_a_result_names_the_weights_behind_an_alias(tiny_bert: Path) -> None:
    import _common

    from simpair.bi_encoder import weights_fingerprint

    assert _common.provenance(str(tiny_bert))["model_weights_sha256"] == weights_fingerprint(str(tiny_bert))
    assert "model_weights_sha256" not in _common.provenance("org/not-here")


def test_every_result_records_its_cpu(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    import _common

    from simpair.backend.cpu import describe

    _common.emit({"rows": {"simpair onnx int8": {"rate": 1.0}}}, str(tmp_path / "r.json"))
    saved = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    assert saved["cpu"] == describe() and saved["cpu"]["isa"] and saved["cpu"]["model"]
    assert saved["commit"] is None or len(saved["commit"].split("+")[0]) == 40
    assert json.loads(capsys.readouterr().out)["cpu"]["flags"] == describe()["flags"]


def test_adaptation_summary_means_spreads_and_targets(tmp_path: Path) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from _adaptation import plot, summarise

    def row(domain: str, method: str, n: int, acc: float, seed: int = 0) -> dict:
        part = {"accuracy": acc, "roc_auc": acc}
        return {"init": "matcher-lcqmc", "domain": domain, "method": method, "n": n, "seed": seed,
                "dev": part, "lcqmc": part, "seconds": 10.0}

    rows = [row("BQ", "zero-shot", 0, 0.60), row("BQ", "specialist", 9000, 0.84),
            row("BQ", "mined", 1000, 0.80), row("BQ", "mined", 1000, 0.84, seed=1),
            row("BQ", "mined", 300, 0.75), row("BQ", "random", 300, 0.73)]
    s = summarise(rows)
    point = s["curves"]["matcher-lcqmc"]["BQ"]["mined"]["1000"]
    assert point["dev_accuracy"] == 0.82 and point["dev_accuracy_std"] == 0.02 and point["seeds"] == 2
    t = s["targets"]
    assert t["lcqmc_1k_mined_within_2pt_of_specialists"]["met"] is True  # 0.82 >= 0.84 - 0.02
    assert t["lcqmc_300_mined_1pt_above_random"]["met"] is True  # 0.75 >= 0.73 + 0.01
    rows[2]["dev"] = {"accuracy": 0.70, "roc_auc": 0.70}
    assert summarise(rows)["targets"]["lcqmc_1k_mined_within_2pt_of_specialists"]["met"] is False
    plot(s, str(tmp_path / "curves.png"))
    assert (tmp_path / "curves.png").stat().st_size > 10_000
