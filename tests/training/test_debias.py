"""Training against the word-overlap shortcut: the bias-only model, the product-of-experts loss, a whole run."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import write

from simpair.config import build_config
from simpair.cross_encoder import CrossEncoder
from simpair.errors import ConfigError
from simpair.training import train
from simpair.training.debias import fit_bias, overlap, overlap_features


def test_overlap_features() -> None:
    assert overlap("信用卡提额", "信用卡额度") == pytest.approx(4 / 6)
    assert overlap_features("信用卡提额", "信用卡额度") == pytest.approx([4 / 6, 4 / 5, 1.0])
    assert overlap_features("Buy a car?", "buy the CAR") == pytest.approx([2 / 4, 2 / 3, 10 / 11])
    assert overlap_features("??", "!!") == [0.0, 0.0, 1.0]


def test_bias_model_learns_the_shortcut_of_its_file() -> None:
    rows = [("我想借钱怎么办", "我想借钱怎么办呢", 1), ("信用卡怎么还款", "信用卡怎么还款啊", 1),
            ("花呗可以提额吗", "花呗可以提额吗？", 1), ("今天天气好", "股票怎么买", 0), ("手机坏了", "想去旅游", 0),
            ("我要退货", "明天下雨吗", 0)] * 5
    table, auc = fit_bias(rows)
    assert auc == 1.0
    same = np.exp(table[frozenset(("我想借钱怎么办", "我想借钱怎么办呢"))])
    other = np.exp(table[frozenset(("今天天气好", "股票怎么买"))])
    assert same.sum() == pytest.approx(1.0) and same[1] > 0.5 > other[1]
    flat, auc = fit_bias([("a", "b", 0), ("c", "d", 0), ("e", "f", 0)])  # one label only: no bias, plain loss
    assert auc == 0.5 and np.exp(flat[frozenset(("a", "b"))]) == pytest.approx([0.5, 0.5])


def test_product_of_experts_loss(tiny_bert: Path, tmp_path: Path) -> None:
    """A bias that already predicts the label leaves less loss for the model; one that contradicts it leaves
    more; outside training the bias is ignored."""
    import torch
    from transformers import AutoModelForSequenceClassification, Trainer, TrainingArguments

    from simpair.training.debias import poe_trainer

    model = AutoModelForSequenceClassification.from_pretrained(  # no dropout: train and eval passes agree
        str(tiny_bert), num_labels=2, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    trainer = poe_trainer(Trainer)(model=model, args=TrainingArguments(str(tmp_path / "t"), use_cpu=True,
                                                                        report_to=[]))
    batch = {"input_ids": torch.tensor([[2, 5, 6, 3], [2, 7, 8, 3]]), "labels": torch.tensor([0, 1]),
             "attention_mask": torch.ones(2, 4, dtype=torch.long), "length": torch.tensor([4, 4])}
    log = torch.log(torch.tensor([[0.95, 0.05], [0.05, 0.95]]))
    model.eval()
    with torch.no_grad():
        plain = trainer.compute_loss(model, {**batch, "bias": log})  # eval: the model alone
        assert plain.item() == pytest.approx(trainer.compute_loss(model, dict(batch)).item())
        model.train()
        agreeing = trainer.compute_loss(model, {**batch, "bias": log})
        uniform = trainer.compute_loss(model, {**batch, "bias": torch.log(torch.full((2, 2), 0.5))})
        against = trainer.compute_loss(model, {**batch, "bias": log.flip(-1)})
    assert agreeing < uniform < against
    assert uniform.item() == pytest.approx(plain.item(), rel=1e-4)  # a uniform bias changes nothing


def test_training_with_debias_records_the_bias(tiny_bert: Path, tmp_path: Path, train_file: Path,
                                              dev_file: Path) -> None:
    cfg = build_config(dict(model=str(tiny_bert), train=str(train_file), dev=str(dev_file), out=str(tmp_path / "o"),
                            max_steps=4, eval_steps=4, batch_size=16, learning_rate=1e-3, max_length=48, bf16="no",
                            debias="overlap"))
    meta = train(cfg, progress=False)
    assert meta["global_step"] == 4 and np.isfinite(meta["train_loss"])
    saved = json.loads((tmp_path / "o" / "simpair.json").read_text())
    strength = saved["data"]["debias"]["bias_roc_auc"]
    assert saved["config"]["debias"] == "overlap" and 0.0 <= strength[str(train_file)] <= 1.0
    probs = CrossEncoder(str(tmp_path / "o"), bf16=False).predict([("你好", "您好"), ("a", "b")])
    assert probs.shape == (2,) and np.all((probs >= 0) & (probs <= 1))


def test_debias_refuses_scores_and_the_bi_encoder(tiny_bert: Path, tmp_path: Path, train_file: Path) -> None:
    sts = write(tmp_path / "sts.tsv", "sentence1\tsentence2\tscore\n一\t二\t3\n三\t四\t1\n五\t六\t4\n")
    with pytest.raises(ConfigError, match="debias"):
        train(build_config(dict(model=str(tiny_bert), train=str(sts), out=str(tmp_path / "r"), debias="overlap")),
              progress=False)
    with pytest.raises(ConfigError, match="debias"):
        train(build_config(dict(model=str(tiny_bert), train=str(train_file), out=str(tmp_path / "b"),
                                kind="bi-encoder", debias="overlap")), progress=False)
    with pytest.raises(ConfigError, match="debias"):
        build_config({"debias": "words"})
    assert not (tmp_path / "r").exists() and not (tmp_path / "b").exists()
