"""The retrieval commands: ``index build/add/info``, ``search``, ``eval-retrieval``."""
from __future__ import annotations

import json
import time
from typing import Any

import click

from ..index import ON_DUPLICATE, TYPES
from ..stores import QUANTIZATION
from .app import emit, engine_options, given, main, print_table, runtime_options

_rerank_weight_option = click.option(
    "--rerank-weight", type=float, default=None,
    help="Re-ranked order: cosine + this x the matcher's probability (default 0.05; inf: the probability alone; "
    "0: the bi-encoder's order, hits only annotated).")


# --------------------------------------------------------------------------- index / search


@main.group()
def index() -> None:
    """Build, grow and describe an index of a question corpus (FAISS, or a Qdrant collection)."""


@index.command("build")
@click.argument("corpus")
@click.option("--out", default=None, help="Index directory to write (FAISS).")
@click.option("--store", default=None, help="Or a Qdrant collection: qdrant+local://PATH[?collection=NAME] "
              "(no server) or qdrant://HOST:PORT/COLLECTION (API key from $QDRANT_API_KEY); pip install "
              "'simpair[qdrant]'.")
@click.option("--model", default=None, help="Bi-encoder model (default: the bundled general 'encoder', else "
              "e5-small).")
@click.option("--type", "kind", type=click.Choice(TYPES), default="auto",
              show_default=True, help="FAISS: auto is flat up to 20k texts, HNSW up to 2M, IVF-PQ beyond.")
@click.option("--hnsw-m", type=click.IntRange(min=2), default=None, help="Qdrant: HNSW edges per node.")
@click.option("--ef-construct", type=click.IntRange(min=4), default=None, help="Qdrant: HNSW build breadth.")
@click.option("--quantization", type=click.Choice(QUANTIZATION), default="none", show_default=True,
              help="Qdrant: int8 scalar quantisation of the stored vectors (a server applies it; local mode "
              "searches the float vectors).")
@click.option("--prefix", default=None, help='Text prefix (default: "query: " for E5 models).')
@click.option("--batch-size", type=int, default=64)
@click.option("--processes", type=click.IntRange(min=1), default=1, show_default=True,
              help="Encode with this many worker processes (sentence-transformers' multi-process pool).")
@engine_options
@click.option("--json", "as_json", is_flag=True)
def index_build(corpus: str, out: str | None, store: str | None, model: str, kind: str, hnsw_m: int | None,
                ef_construct: int | None, quantization: str, prefix: str | None, batch_size: int, processes: int,
                engine: str, ray_address: str | None, workers: int | None, as_json: bool) -> None:
    """Encode CORPUS (.txt, .tsv id<TAB>text, .jsonl) and write an index to --out (or --store)."""
    from ..bi_encoder import BiEncoder
    from ..index import Index, choose_type, memory_estimate
    from ..models import default_encoder
    from ..readers import read_corpus
    from ..utils import human_size

    if (out is None) == (store is None):
        raise click.UsageError("give --out DIR (a FAISS index) or --store URL (a Qdrant collection)")
    n = len(read_corpus(corpus))  # validate first: nothing is encoded for a bad file
    encoder = BiEncoder(model or default_encoder(), prefix=prefix)
    encode = _engine(engine, ray_address, workers).encoder(encoder.name, encoder.prefix, batch_size) \
        if engine != "local" else None
    t0 = time.perf_counter()
    if store is not None:
        from ..stores.qdrant import QdrantIndex

        click.echo(f"{n} texts into {store}", err=True)
        built: Any = QdrantIndex.build(corpus, store, encoder, batch_size=batch_size, progress=not as_json,
                                       hnsw_m=hnsw_m, ef_construct=ef_construct, quantization=quantization,
                                       encode=encode)
    else:
        chosen = choose_type(n) if kind == "auto" else kind
        click.echo(f"{n} texts, index type {chosen}, about {human_size(memory_estimate(n, encoder.dim, chosen))} "
                   "in memory", err=True)
        built = Index.build(corpus, out, encoder, kind=kind, batch_size=batch_size, progress=not as_json,
                            processes=processes, encode=encode)
    info = built.info()
    info["total_seconds"] = round(time.perf_counter() - t0, 2)
    emit(info, as_json, lambda r: print_table(f"simpair index {out or store}", [(k, r.get(k)) for k in (
        "count", "index_type", "model", "dim", "prefix", "size_bytes", "build_seconds", "total_seconds")
        if k in r]))


def _engine(engine: str, address: str | None, workers: int | None) -> Any:
    from ..engines import make_engine

    return make_engine(engine, address, workers)


@index.command("add")
@click.argument("index_dir")
@click.argument("corpus")
@click.option("--on-duplicate", type=click.Choice(ON_DUPLICATE), default="error", show_default=True,
              help="An id already in the index: reject the file, or skip that entry.")
@click.option("--batch-size", type=int, default=64)
@engine_options
@click.option("--json", "as_json", is_flag=True)
def index_add(index_dir: str, corpus: str, on_duplicate: str, batch_size: int, engine: str,
              ray_address: str | None, workers: int | None, as_json: bool) -> None:
    """Append the texts of CORPUS to INDEX_DIR (a directory or a store address); what is there is not
    re-encoded."""
    from ..stores import add_to_store

    result = add_to_store(index_dir, corpus, on_duplicate=on_duplicate, batch_size=batch_size,
                          progress=not as_json, engine=_engine(engine, ray_address, workers))
    emit(result, as_json, lambda r: click.echo(f"added {r['added']}, skipped {r['skipped']}, now {r['count']}"))


@index.command("info")
@click.argument("index_dir")
@click.option("--json", "as_json", is_flag=True)
def index_info(index_dir: str, as_json: bool) -> None:
    """Describe an index (a directory or a store address): model, type, size, count."""
    from ..stores import open_index

    info = open_index(index_dir).info()
    emit(info, as_json, lambda r: print_table(f"simpair index {index_dir}", [
        (k, r.get(k)) for k in ("count", "index_type", "params", "model", "fingerprint", "dim", "prefix",
                                "size_bytes", "collection", "created", "updated") if k in r]))


@main.command()
@click.argument("index_dir")
@click.argument("query", required=False)
@click.option("-k", "k", type=int, default=10, show_default=True, help="Hits to return.")
@click.option("--rerank", is_flag=True, help="Re-rank the candidates with the default matcher ($SIMPAIR_MODEL, "
              "else simpair models --use, else the bundled one).")
@click.option("--rerank-model", default=None, help="Re-rank with this cross-encoder (implies --rerank).")
@click.option("--candidates", type=int, default=50, show_default=True, help="Candidates re-ranked per query.")
@_rerank_weight_option
@click.option("--queries", "queries_file", default=None, help="A file of queries, one a line.")
@click.option("--domain", default=None, help="The re-ranker decides with the threshold calibrated under this name.")
@runtime_options
@click.option("--json", "as_json", is_flag=True)
def search(index_dir: str, query: str | None, k: int, rerank: bool, rerank_model: str | None, candidates: int,
           rerank_weight: float | None, queries_file: str | None, domain: str | None, backend: str, precision: str,
           threads: int | None, as_json: bool) -> None:
    """Find the stored questions closest to QUERY (or to each line of --queries)."""
    from ..models import default_reranker
    from ..readers import read_text_lines
    from ..search import Searcher

    if (query is None) == (queries_file is None):
        raise click.UsageError("give a QUERY or --queries FILE")
    queries = [query] if query is not None else read_text_lines(queries_file, expected="one query a line",
                                                                first_column=True)
    searcher = Searcher(index_dir, reranker=default_reranker(rerank, rerank_model), backend=backend,
                        precision=precision, threads=threads, bulk=queries_file is not None, domain=domain,
                        **given(rerank_weight=rerank_weight))
    t0 = time.perf_counter()
    results = searcher.search_batch(queries, k=k, candidates=candidates)
    seconds = time.perf_counter() - t0
    by = {"encoder": searcher.encoder.name, "reranker": searcher.reranker.name if searcher.reranker else None}
    if as_json:
        payload: Any = {"query": queries[0], "hits": results[0], **by} if query is not None else [
            {"query": q, "hits": h, **by} for q, h in zip(queries, results)]
        click.echo(json.dumps(payload, indent=2 if query is not None else None, ensure_ascii=False))
    else:
        for q, hits in zip(queries, results):
            click.echo(f"query: {q}")
            for rank, h in enumerate(hits, 1):
                extra = (f"  rerank {h['rerank_score']:.4f} {'same' if h['same'] else 'different'}"
                         if "rerank_score" in h else "")
                click.echo(f"{rank:3d}. {h['score']:.4f}{extra}  [{h['id']}] {h['text']}")
    reranked = f", re-ranked by {by['reranker']}" if by["reranker"] else ""
    click.echo(f"{len(queries)} queries in {seconds:.3f}s (encoder {by['encoder']}{reranked})", err=True)


@main.command("eval-retrieval")
@click.argument("index_dir")
@click.argument("queries_file")
@click.option("--rerank", is_flag=True, help="Also evaluate with the default matcher re-ranking the candidates.")
@click.option("--rerank-model", default=None,
              help="Also evaluate with this cross-encoder re-ranking (implies --rerank).")
@click.option("--candidates", type=int, default=50, show_default=True)
@_rerank_weight_option
@click.option("--limit", type=int, default=None, help="Evaluate the first N queries only.")
@runtime_options
@click.option("--json", "as_json", is_flag=True)
def eval_retrieval(index_dir: str, queries_file: str, rerank: bool, rerank_model: str | None, candidates: int,
                   rerank_weight: float | None, limit: int | None, backend: str, precision: str, threads: int | None,
                   as_json: bool) -> None:
    """Recall@1/5/10, MRR@10, nDCG@10 of INDEX_DIR on QUERIES_FILE (query<TAB>relevant_ids)."""
    from ..evaluation import evaluate_index
    from ..models import default_reranker

    report = evaluate_index(index_dir, queries_file, reranker=default_reranker(rerank, rerank_model),
                            candidates=candidates, limit=limit, backend=backend, precision=precision,
                            threads=threads, progress=True,
                            **given(rerank_weight=rerank_weight))

    def render(r: dict[str, Any]) -> None:
        rows = [(f"{part} {k}", v) for part in ("bi_encoder", "reranked") if part in r
                for k, v in r[part].items() if isinstance(v, float)]
        if "ann_recall@10_vs_exact" in r:
            rows.append(("ANN recall@10 vs exact", r["ann_recall@10_vs_exact"]))
        print_table(f"simpair eval-retrieval {index_dir}", rows)

    emit(report, as_json, render)
