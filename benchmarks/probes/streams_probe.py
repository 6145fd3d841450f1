"""A probe, not a benchmark of record: one 2-thread stream against two 1-thread streams (two Python threads,
each scoring alternate length-sorted batches) for simpair's CrossEncoder, at batch 32 / 64 / 128.

    python benchmarks/probes/streams_probe.py PAIRS PRECISIONS MODEL_DIR    # e.g. 1000 int8,bf16 <merged matcher>
"""
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from simpair import CrossEncoder, read_pairs

os.environ.setdefault("HF_HUB_OFFLINE", "1")
DEV = Path(__file__).resolve().parents[3] / "shared" / "data" / "lcqmc" / "dev.tsv"
pairs = [(p.text_a, p.text_b) for p in read_pairs(DEV, warn=False).pairs[: int(sys.argv[1])]]
model = sys.argv[3]
for prec in sys.argv[2].split(","):
    ce = CrossEncoder(model, backend="torch", precision=prec, max_length=64)
    for bs in (32, 64, 128):
        torch.set_num_threads(2)
        ce.predict(pairs[:300], batch_size=bs)
        t = time.perf_counter(); ref = ce.predict(pairs, batch_size=bs); one = time.perf_counter() - t
        torch.set_num_threads(1)
        # two streams: the length-sorted order split by alternate batches so both halves cost alike
        order = np.argsort([-(len(a) + len(b)) for a, b in pairs])
        chunks = [order[i:i + bs] for i in range(0, len(order), bs)]
        halves = [np.concatenate(chunks[0::2]), np.concatenate(chunks[1::2])]
        out = np.zeros(len(pairs), dtype=np.float32)
        def run(idx, ce=ce, out=out, bs=bs):
            out[idx] = ce.predict([pairs[i] for i in idx], batch_size=bs)
        with ThreadPoolExecutor(2) as ex:
            list(ex.map(run, halves))  # warm
            t = time.perf_counter(); list(ex.map(run, halves)); two = time.perf_counter() - t
        print(prec, bs, "one stream", round(len(pairs) / one, 1), "two streams", round(len(pairs) / two, 1),
              "maxdiff", float(np.abs(out - ref).max()), flush=True)
    torch.set_num_threads(2)
