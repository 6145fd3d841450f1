"""Micro-batching for the server: requests that arrive together are scored together, fairly, and a bad one
fails alone.

Each scoring endpoint has a :class:`MicroBatcher`. It waits ``window_ms`` for company, then fills one model
call of at most ``max_batch`` items round-robin from every waiting request (a request of 64 pairs does not hold
a one-pair request behind it: each batch takes a share of both), runs it in a worker thread (never on the event
loop) and hands each caller its own rows. When a batch fails, its requests are retried one by one, so the error
reaches only the request that caused it. At most ``max_queue`` requests wait; one more is refused at once
(:class:`Overloaded`, the server's 429), and a request that waits longer than ``timeout_s`` gets
:class:`TimedOut` and its remaining items are dropped.
"""
from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any


class Overloaded(Exception):
    """The queue is full: the client should retry later (HTTP 429 with Retry-After)."""


class TimedOut(Exception):
    """The request waited past its timeout (HTTP 503)."""


@dataclass
class _Job:
    items: list[Any]
    future: asyncio.Future
    queued_at: float
    results: list[Any] = field(default_factory=list)
    started_at: float | None = None
    inference_s: float = 0.0

    @property
    def done(self) -> bool:
        return len(self.results) >= len(self.items) or self.future.done()


class MicroBatcher:
    """Collect concurrent requests for ``window_ms`` and score them together with ``fn(items) -> results``
    in a worker thread; ``enabled=False`` scores each request alone (the baseline of serve_load.py)."""

    def __init__(self, fn: Callable[[list[Any]], list[Any]], window_ms: float = 5.0, max_batch: int = 64,
                 enabled: bool = True, max_queue: int = 128, timeout_s: float = 60.0,
                 observe: Callable[[int, float], None] | None = None) -> None:
        self.fn = fn
        self.window = window_ms / 1000.0
        self.max_batch = max_batch
        self.enabled = enabled
        self.max_queue = max_queue
        self.timeout_s = timeout_s
        self.observe = observe  # (batch size, seconds) of every model call, for /metrics
        self.lock = threading.Lock()  # one model call at a time: the runtime already uses every core
        self.pending: list[_Job] = []
        self.wakeup: asyncio.Event | None = None
        self.worker: asyncio.Task | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.batches = 0
        self.items = 0
        self.waiting = 0  # requests waiting or being scored

    def _run(self, items: list[Any]) -> list[Any]:
        with self.lock:
            t0 = time.perf_counter()
            results = self.fn(items)
            self.batches += 1
            self.items += len(items)
            if self.observe is not None:
                self.observe(len(items), time.perf_counter() - t0)
            if len(results) != len(items):
                raise RuntimeError(f"scored {len(results)} results for {len(items)} items")
            return results

    async def submit(self, items: Sequence[Any], timing: dict[str, float] | None = None) -> list[Any]:
        """Score ``items`` (one request's rows); returns their results in order. ``timing`` gets the
        request's ``queue_ms`` and ``inference_ms``."""
        if self.waiting >= self.max_queue:
            raise Overloaded(f"{self.waiting} requests are waiting (the limit is {self.max_queue}); retry shortly")
        loop = asyncio.get_running_loop()
        job = _Job(list(items), loop.create_future(), time.perf_counter())
        self.waiting += 1
        try:
            if not self.enabled:
                job.started_at = time.perf_counter()
                job.results = await asyncio.wait_for(loop.run_in_executor(None, self._run, job.items), self.timeout_s)
                job.inference_s = time.perf_counter() - job.started_at
            else:
                self._ensure_worker(loop)
                self.pending.append(job)
                self.wakeup.set()
                job.results = await asyncio.wait_for(job.future, self.timeout_s)
        except asyncio.TimeoutError as exc:
            raise TimedOut(f"not scored within {self.timeout_s:g} s") from exc
        finally:
            self.waiting -= 1
            if job in self.pending:
                self.pending.remove(job)
        if timing is not None:
            start = job.started_at or time.perf_counter()
            timing["queue_ms"] = round((start - job.queued_at) * 1000, 2)
            timing["inference_ms"] = round(job.inference_s * 1000, 2)
        return job.results

    def _ensure_worker(self, loop: asyncio.AbstractEventLoop) -> None:
        if self.loop is not loop or self.worker is None or self.worker.done():
            # the collecting task lives in the event loop that serves the requests (a new loop: a new task)
            self.loop, self.wakeup, self.pending = loop, asyncio.Event(), []
            self.worker = loop.create_task(self._loop())

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self.wakeup.wait()
            self.wakeup.clear()
            deadline = loop.time() + self.window
            while sum(len(j.items) - len(j.results) for j in self.pending) < self.max_batch:
                timeout = deadline - loop.time()
                if timeout <= 0:
                    break
                try:
                    await asyncio.wait_for(self.wakeup.wait(), timeout)
                    self.wakeup.clear()
                except asyncio.TimeoutError:
                    break
            while self.pending:
                await self._one_batch(loop)

    def _fill(self) -> list[tuple[_Job, int, int]]:
        """(job, start, stop) slices for one model call: round-robin, each waiting job a fair share."""
        jobs = [j for j in self.pending if not j.done]
        plan: list[tuple[_Job, int, int]] = []
        room = self.max_batch
        taken = {id(j): len(j.results) for j in jobs}
        while room > 0 and jobs:
            share = max(1, room // len(jobs))
            for job in list(jobs):
                start = taken[id(job)]
                stop = min(len(job.items), start + share, start + room)
                if stop > start:
                    plan.append((job, start, stop))
                    room -= stop - start
                    taken[id(job)] = stop
                if taken[id(job)] >= len(job.items):
                    jobs.remove(job)
                if room <= 0:
                    break
        return plan

    async def _one_batch(self, loop: asyncio.AbstractEventLoop) -> None:
        self.pending = [j for j in self.pending if not j.done]
        plan = self._fill()
        if not plan:
            return
        flat = [item for job, a, b in plan for item in job.items[a:b]]
        now = time.perf_counter()
        for job, _, _ in plan:
            job.started_at = job.started_at or now
        try:
            results = await loop.run_in_executor(None, self._run, flat)
        except Exception:  # noqa: BLE001 - isolate: each request's slice alone, the error only to its request
            await self._one_by_one(loop, plan)
            return
        spent, at = time.perf_counter() - now, 0
        for job, a, b in plan:
            job.results.extend(results[at : at + b - a])
            job.inference_s += spent
            at += b - a
            self._finish(job)

    async def _one_by_one(self, loop: asyncio.AbstractEventLoop, plan: list[tuple[_Job, int, int]]) -> None:
        for job, a, b in plan:
            t0 = time.perf_counter()
            try:
                job.results.extend(await loop.run_in_executor(None, self._run, job.items[a:b]))
            except Exception as exc:  # noqa: BLE001 - this request's own error
                if not job.future.done():
                    job.future.set_exception(exc)
                continue
            job.inference_s += time.perf_counter() - t0
            self._finish(job)

    def _finish(self, job: _Job) -> None:
        if len(job.results) >= len(job.items) and not job.future.done():
            job.future.set_result(job.results)
