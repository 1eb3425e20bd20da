"""One contract for the Trainer port, run on QloraTrainer with 4-bit NF4 (on the CPU through bitsandbytes)
and in plain LoRA, over a tiny Llama built here: it learns, reports progress and metrics, stops when told,
resumes from its checkpoint, evaluates and merges."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import pytest

from mindfu_adapters.trainer.qlora import QloraTrainer
from mindfu_core.domain.chat import Message, Role
from mindfu_core.domain.training import ChatExample, Hyperparameters, Progress
from mindfu_core.errors import InvalidRequest
from mindfu_core.ports.trainer import Trainer, TrainingRequest
from tests.fixtures.tiny_llama import write_tiny_llama

pytestmark = pytest.mark.slow

EXAMPLES = [
    ChatExample(
        messages=(
            Message(role=Role.USER, content=f"What is {i} plus {i}?"),
            Message(role=Role.ASSISTANT, content=f"{i} plus {i} is {2 * i}."),
        )
    )
    for i in range(40)
]


class Recorder:
    """TrainingCallbacks that keep everything and can ask to stop after a step."""

    def __init__(self, stop_after: int | None = None) -> None:
        self.progress: list[Progress] = []
        self.metrics: list[tuple[int, dict[str, float]]] = []
        self._stop_after = stop_after

    def on_progress(self, progress: Progress) -> None:
        self.progress.append(progress)

    def on_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        self.metrics.append((step, dict(metrics)))

    def should_stop(self) -> bool:
        return (
            self._stop_after is not None
            and bool(self.progress)
            and self.progress[-1].step >= self._stop_after
        )


@pytest.fixture(scope="module")
def base_model(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(write_tiny_llama(tmp_path_factory.mktemp("tiny-llama")))


@pytest.fixture(params=["qlora-4bit", "lora"])
def setup(request: pytest.FixtureRequest) -> tuple[Trainer, Hyperparameters]:
    hp = Hyperparameters(
        max_steps=16,
        batch_size=2,
        gradient_accumulation=1,
        learning_rate=2e-3,
        logging_steps=4,
        save_steps=4,
        load_in_4bit=request.param == "qlora-4bit",
    )
    return QloraTrainer(), hp


def test_it_learns_and_reports(
    setup: tuple[Trainer, Hyperparameters], base_model: str, tmp_path: Path
) -> None:
    trainer, hp = setup
    calls = Recorder()
    request = TrainingRequest(
        base_model=base_model,
        output_dir=str(tmp_path),
        train=EXAMPLES[:36],
        validation=EXAMPLES[36:],
        hyperparameters=hp,
    )
    outcome = trainer.train(request, calls)
    assert outcome.steps == 16
    assert outcome.eval_loss is not None and outcome.base_eval_loss is not None
    assert outcome.eval_loss < outcome.base_eval_loss  # it learned something on held-out data
    adapter = Path(outcome.adapter_dir)
    assert (adapter / "adapter_config.json").exists() and (adapter / "adapter_model.safetensors").exists()
    saved = json.loads((adapter / "adapter_config.json").read_text())  # what peft trained, read back
    assert (saved["r"], saved["lora_alpha"], saved["lora_dropout"]) == (16, 32, 0.05)
    linear = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
    # "all-linear" resolved by peft to module paths: every linear layer of every block, not the output head
    assert {name.rsplit(".", 1)[-1] for name in saved["target_modules"]} == linear
    assert len(saved["target_modules"]) == len(linear) * 2  # the tiny model has two blocks
    assert [p.step for p in calls.progress] == list(range(1, 17)) and calls.progress[-1].total_steps == 16
    assert calls.progress[-1].eta_s == 0
    logged = [step for step, metrics in calls.metrics if "loss" in metrics]
    assert logged == [4, 8, 12, 16]  # every logging_steps
    assert any("tokens_per_s" in m for _, m in calls.metrics) and outcome.tokens and outcome.tokens > 0
    # this machine has no CUDA: the trainer says what it changed
    assert any("without paging" in note for note in outcome.notes)
    assert any("4-bit NF4 runs on the CPU" in note for note in outcome.notes) == hp.load_in_4bit

    tuned = trainer.evaluate(base_model, outcome.adapter_dir, EXAMPLES[36:], max_seq_length=256)
    base = trainer.evaluate(base_model, None, EXAMPLES[36:], max_seq_length=256)
    assert tuned < base


def test_it_stops_when_told_and_resumes_from_its_checkpoint(
    setup: tuple[Trainer, Hyperparameters], base_model: str, tmp_path: Path
) -> None:
    trainer, hp = setup
    request = TrainingRequest(
        base_model=base_model, output_dir=str(tmp_path), train=EXAMPLES, hyperparameters=hp
    )
    stopped = trainer.train(request, Recorder(stop_after=6))
    assert stopped.steps == 6
    assert (tmp_path / "checkpoint-6").is_dir()
    resumed = Recorder()
    finished = trainer.train(request, resumed)
    assert finished.steps == 16 and "resumed from checkpoint-6" in finished.notes
    assert resumed.progress[0].step == 7


def test_merge_folds_the_adapter_into_a_loadable_model(base_model: str, tmp_path: Path) -> None:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    trainer = QloraTrainer()
    hp = Hyperparameters(
        max_steps=4, batch_size=2, gradient_accumulation=1, learning_rate=5e-3, load_in_4bit=False
    )
    request = TrainingRequest(
        base_model=base_model, output_dir=str(tmp_path / "run"), train=EXAMPLES, hyperparameters=hp
    )
    outcome = trainer.train(request, Recorder())
    merged = trainer.merge(base_model, outcome.adapter_dir, str(tmp_path / "merged"))
    assert (Path(merged) / "model.safetensors").exists() and (Path(merged) / "tokenizer.json").exists()
    ids = torch.tensor([[5, 17, 42, 9]])
    with torch.no_grad():
        expected = PeftModel.from_pretrained(
            AutoModelForCausalLM.from_pretrained(base_model), outcome.adapter_dir
        )(ids).logits
        got = AutoModelForCausalLM.from_pretrained(merged)(ids).logits
    assert torch.allclose(expected, got, atol=1e-4)


def test_a_missing_base_model_is_invalid(tmp_path: Path) -> None:
    request = TrainingRequest(
        base_model=str(tmp_path / "nothing"), output_dir=str(tmp_path / "out"), train=EXAMPLES
    )
    with pytest.raises(InvalidRequest, match="base model"):
        QloraTrainer().train(request, Recorder())
