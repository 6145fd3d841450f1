"""Build tiny random BERT/ERNIE models with a character vocabulary, offline, for tests."""
from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def write_vocab(texts: Iterable[str], path: Path) -> Path:
    chars = sorted({c for t in texts for c in t.lower() if not c.isspace()})
    lines = SPECIALS + chars + [f"##{c}" for c in chars]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def make_tiny_model(out: Path, texts: Iterable[str], kind: str = "bert", seed: int = 0) -> Path:
    """Save a 2-layer, 32-hidden random encoder plus a BERT WordPiece tokenizer into ``out``."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast, ErnieConfig, ErnieModel

    out.mkdir(parents=True, exist_ok=True)
    vocab = write_vocab(texts, out / "vocab.txt")
    tok = BertTokenizerFast(vocab=str(vocab), do_lower_case=True, tokenize_chinese_chars=True)
    assert len(tok) > len(SPECIALS), "tokenizer did not read the vocabulary"
    tok.model_max_length = 128
    tok.save_pretrained(str(out))
    common = dict(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                  intermediate_size=64, max_position_embeddings=128, pad_token_id=0,
                  # wider than BERT's 0.02 so that different texts get clearly different embeddings
                  initializer_range=0.2)
    torch.manual_seed(seed)
    if kind == "ernie":
        # use_task_id: ERNIE 3.0-style task embeddings, so the model really differs from BERT
        model = ErnieModel(ErnieConfig(**common, task_type_vocab_size=3, use_task_id=True))
    else:
        model = BertModel(BertConfig(**common))
    model.save_pretrained(str(out))
    return out


def make_tiny_unigram_model(out: Path, texts: Iterable[str], extra_pieces: int = 300, seed: int = 0) -> Path:
    """A 2-layer random BERT with a SentencePiece-style Unigram tokenizer (Metaspace, ``<s> … </s>``) trained
    on ``texts``: the shape of e5-small's, small enough for tests of vocabulary pruning."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    out.mkdir(parents=True, exist_ok=True)
    texts = list(texts)
    vocab_size = len({c for t in texts for c in t}) + extra_pieces  # every character, then words
    specials = ["<s>", "<pad>", "</s>", "<unk>"]
    tok = Tokenizer(models.Unigram())
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    tok.train_from_iterator(texts, trainers.UnigramTrainer(vocab_size=vocab_size, special_tokens=specials,
                                                                 unk_token="<unk>"))
    tok.post_processor = processors.TemplateProcessing(single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>",
                                                       special_tokens=[("<s>", 0), ("</s>", 2)])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>",
                                   pad_token="<pad>", cls_token="<s>", sep_token="</s>", model_max_length=128)
    fast.save_pretrained(str(out))
    torch.manual_seed(seed)
    BertModel(BertConfig(vocab_size=tok.get_vocab_size(), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                         intermediate_size=64, max_position_embeddings=130, pad_token_id=1,
                         initializer_range=0.2)).save_pretrained(str(out))
    return out
