"""One batched step's plan: a row for every decoding sequence first, then prompt chunks in arrival order
while the batch has room; logits only where a sequence samples next."""

from __future__ import annotations

import threading

from mindfu_adapters.llm.llama_plan import Job, Prepared, SeqSlot, plan_step
from mindfu_adapters.llm.shaping import ToolMode


def job(seq_id: int, todo: list[int], *, decoding: bool = False, held: int = 0) -> Job:
    prepared = Prepared(
        prompt_tokens=list(range(held + len(todo))), kwargs={}, n=1, mode=ToolMode.PLAIN, tools=()
    )
    slot = SeqSlot(seq_id, tokens=list(range(held)))
    return Job(slot, prepared, threading.Event(), lambda _: None, todo=todo, decoding=decoding)


def test_a_step_mixes_decodes_and_a_prefill_chunk() -> None:
    a, b = job(0, [7], decoding=True, held=40), job(1, [8], decoding=True, held=12)
    long = job(2, list(range(100)))
    plan = plan_step([long, a, b], budget=32)
    assert [(f.job, f.count, f.wants_logits) for f in plan] == [(a, 1, True), (b, 1, True), (long, 30, False)]


def test_a_prompt_that_fits_samples_in_the_same_step_and_the_next_waits() -> None:
    first, second, third = job(0, list(range(10))), job(1, list(range(10))), job(2, list(range(10)))
    plan = plan_step([first, second, third], budget=16)
    assert [(f.job, f.count, f.wants_logits) for f in plan] == [(first, 10, True), (second, 6, False)]


def test_decoding_rows_come_first_even_when_the_prompts_would_fill_the_batch() -> None:
    prompts = [job(i, list(range(64))) for i in range(2)]
    decoding = [job(2 + i, [1], decoding=True) for i in range(3)]
    plan = plan_step([*prompts, *decoding], budget=8)
    assert [f.job for f in plan[:3]] == decoding
    assert sum(f.count for f in plan) == 8 and plan[3].job is prompts[0] and len(plan) == 4


def test_affinity_wants_the_longer_half_of_a_slot() -> None:
    slot = SeqSlot(0, tokens=[1, 2, 3, 4, 5, 6], adapter=None)
    assert slot.affinity([1, 2, 3, 4, 9], None) == 4  # 4 of 6 held: worth it
    assert slot.affinity([1, 2, 9], None) == 0  # 2 of 6: another conversation's slot
    assert slot.cached_prefix([1, 2, 3], "lora") == 0  # computed under no adapter
