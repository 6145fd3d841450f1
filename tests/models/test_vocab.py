"""The pruned vocabulary (simpair.models.vocab): on text the kept pieces cover, the pruned tokenizer segments
exactly as the full one and the pruned model gives the same outputs; other text still tokenises."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import DATA
from tiny import make_tiny_unigram_model

from simpair.errors import SimpairError
from simpair.models.vocab import VOCAB_FILE, count_pieces, covered, load_kept, pieces_to_keep, prune_model


def _texts(name: str) -> list[str]:
    rows = (DATA / name).read_text(encoding="utf-8").splitlines()[1:]
    return [t for row in rows for t in row.split("\t")[:2]]


@pytest.fixture(scope="module")
def pruned(tmp_path_factory: pytest.TempPathFactory) -> dict:
    from tokenizers import Tokenizer

    root = tmp_path_factory.mktemp("vocab")
    train, held_out = _texts("train.tsv"), _texts("dev.tsv")
    full = make_tiny_unigram_model(root / "full", train + held_out)
    tok = Tokenizer.from_file(str(full / "tokenizer.json"))
    spec = json.loads((full / "tokenizer.json").read_text(encoding="utf-8"))
    counts = count_pieces(tok, train[: len(train) // 3], tok.get_vocab_size())  # a third: some pieces go
    keep = pieces_to_keep(spec, counts, floor=2)
    out = prune_model(full, root / "pruned", keep, why="test")
    return {"full": full, "out": out, "keep": keep, "tok": tok, "spec": spec, "texts": train + held_out}


def test_keeps_specials_single_characters_and_the_lowest_scoring_piece(pruned: dict) -> None:
    vocab, keep = pruned["spec"]["model"]["vocab"], set(pruned["keep"])
    assert {0, 1, 2, 3} <= keep and len(vocab) - len(keep) >= 20  # multi-character pieces went
    assert all(i in keep for i, (p, _) in enumerate(vocab) if len(p.lstrip("\u2581")) <= 1)
    assert int(np.argmin([s for _, s in vocab])) in keep
    record = json.loads((pruned["out"] / VOCAB_FILE).read_text(encoding="utf-8"))
    assert record["pieces"] == len(keep) and record["of"] == len(vocab)


def test_covered_text_is_segmented_exactly_as_before(pruned: dict) -> None:
    from tokenizers import Tokenizer

    small = Tokenizer.from_file(str(pruned["out"] / "tokenizer.json"))
    new_id = {old: new for new, old in enumerate(pruned["keep"])}
    texts = pruned["texts"]
    flags = covered(pruned["tok"], pruned["keep"], texts)
    assert 0.2 < np.mean(flags) < 1.0  # both kinds are tried
    for text, ok in zip(texts, flags):
        full_ids, small_ids = pruned["tok"].encode(text).ids, small.encode(text).ids
        if ok:
            assert small_ids == [new_id[i] for i in full_ids], text
        else:  # still tokenises, into the kept pieces, with no more unknowns than the full vocabulary had
            assert small_ids and small_ids.count(3) <= full_ids.count(3), text


def test_outputs_on_covered_text_equal_the_full_model(pruned: dict) -> None:
    import torch
    from transformers import AutoModel, AutoTokenizer

    texts = [t for t, ok in zip(pruned["texts"], covered(pruned["tok"], pruned["keep"], pruned["texts"])) if ok][:40]
    outs = []
    for path in (pruned["full"], pruned["out"]):  # both load as plain transformers directories
        tok, net = AutoTokenizer.from_pretrained(path), AutoModel.from_pretrained(path).eval()
        with torch.no_grad():
            batch = tok(texts, padding=True, return_tensors="pt")
            outs.append(net(**batch).last_hidden_state.numpy())
    assert outs[0].shape == outs[1].shape
    assert np.abs(outs[0] - outs[1]).max() < 1e-5
    assert AutoModel.from_pretrained(pruned["out"]).config.vocab_size == len(pruned["keep"])


def test_the_stored_set_round_trips_and_damage_is_caught(tmp_path: Path) -> None:
    import base64
    import zlib

    bits = np.zeros(1000, dtype=bool)
    bits[[0, 3, 17, 999]] = True
    blob = base64.b64encode(zlib.compress(np.packbits(bits).tobytes())).decode()
    path = tmp_path / "kept.json"
    path.write_text(json.dumps({"pieces": 1000, "kept": 4, "bitmap": blob}))
    assert load_kept(path) == [0, 3, 17, 999]
    path.write_text(json.dumps({"pieces": 1000, "kept": 5, "bitmap": blob}))
    with pytest.raises(SimpairError, match="damaged"):
        load_kept(path)


def test_the_bundled_set_fits_e5_small() -> None:
    """The shipped set: every special token, and the size its header states, of the 250,002 pieces."""
    from simpair.models.vocab import KEPT_FILE

    kept = load_kept(KEPT_FILE)
    assert kept[:4] == [0, 1, 2, 3] and 250001 in kept and 40_000 < len(kept) < 60_000
