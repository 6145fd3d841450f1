"""The micro-batcher alone (no model): a failing request fails alone, big requests do not hold small ones
back, a full queue refuses at once, a slow batch times its requests out."""
from __future__ import annotations

import asyncio
import time

import pytest

from simpair.server import MicroBatcher, Overloaded, TimedOut


def _run(coro):
    return asyncio.run(coro)


def test_a_poison_item_fails_only_its_own_request() -> None:
    calls: list[list[str]] = []

    def fn(items: list[str]) -> list[str]:
        calls.append(items)
        if "poison" in items:
            raise TypeError("TextInputSequence must be str")
        return [s.upper() for s in items]

    b = MicroBatcher(fn, window_ms=30, max_batch=64)

    async def go():
        reqs = [["a", "b"], ["poison"], ["c"], ["d", "e"]]
        return await asyncio.gather(*(b.submit(r) for r in reqs), return_exceptions=True)

    res = _run(go())
    assert res[0] == ["A", "B"] and res[2] == ["C"] and res[3] == ["D", "E"]
    assert isinstance(res[1], TypeError)
    assert len(calls[0]) == 6  # they were batched together first, then retried one by one


def test_a_big_request_does_not_hold_a_small_one_behind_it() -> None:
    order: list[list[int]] = []

    def fn(items: list[int]) -> list[int]:
        order.append(list(items))
        time.sleep(0.01)
        return items

    b = MicroBatcher(fn, window_ms=20, max_batch=8)
    done: dict[str, float] = {}

    async def go():
        async def one(name: str, items: list[int]) -> None:
            await b.submit(items)
            done[name] = time.perf_counter()

        await asyncio.gather(one("big", list(range(100, 164))), one("small", [1]))

    _run(go())
    assert done["small"] < done["big"]
    assert 1 in order[0] and len(order) >= 8  # the first call already carried the small request's pair
    assert all(len(batch) <= 8 for batch in order)


def test_a_full_queue_refuses_at_once_and_serves_again_after() -> None:
    def fn(items: list[int]) -> list[int]:
        time.sleep(0.05)
        return items

    b = MicroBatcher(fn, window_ms=5, max_batch=4, max_queue=3)

    async def go():
        burst = await asyncio.gather(*(b.submit([i]) for i in range(10)), return_exceptions=True)
        after = await b.submit([42])
        return burst, after

    burst, after = _run(go())
    refused = [r for r in burst if isinstance(r, Overloaded)]
    assert len(refused) == 7 and [r for r in burst if not isinstance(r, Exception)] == [[0], [1], [2]]
    assert after == [42] and b.waiting == 0


@pytest.mark.parametrize("enabled", [True, False])
def test_a_request_that_waits_too_long_times_out(enabled: bool) -> None:
    def fn(items: list[int]) -> list[int]:
        time.sleep(0.4)
        return items

    b = MicroBatcher(fn, window_ms=1, max_batch=4, timeout_s=0.1, enabled=enabled)
    timing: dict[str, float] = {}
    with pytest.raises(TimedOut):
        _run(b.submit([1], timing))
    quick = MicroBatcher(lambda items: items, window_ms=1, enabled=enabled)
    assert _run(quick.submit([1, 2], timing)) == [1, 2] and {"queue_ms", "inference_ms"} <= set(timing)
