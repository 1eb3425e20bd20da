"""The model card that makes a fine-tuned folder hub-ready: metadata the Hub reads back (base model, library,
perplexity results) and the recipe in its text."""

from __future__ import annotations

from pathlib import Path

from huggingface_hub import ModelCard

from mindfu_adapters.export.model_card import CardFacts, write_model_card
from mindfu_core.domain.training import Hyperparameters

HP = {"lora_r": 16, "lora_alpha": 32, "batch_size": 2, "gradient_accumulation": 8}


def facts(**changes: object) -> CardFacts:
    base = {
        "name": "ft:devstral-small-2:support:abc123",
        "base_model": "devstral-small-2",
        "base_path": "mistralai/Devstral-Small-2-24B-Instruct-2512",
        "hyperparameters": HP,
        "dataset": {"kept": 480, "train": 432, "validation": 48, "dropped": {"too_short": 3}},
        "perplexity": 3.25,
        "base_perplexity": 4.5,
        "steps": 81,
    }
    return CardFacts(**{**base, **changes})  # type: ignore[arg-type]


def test_a_merged_model_card_reads_back_through_huggingface_hub(tmp_path: Path) -> None:
    path = write_model_card(tmp_path, facts(dtype=None))
    card = ModelCard.load(path)
    assert card.data.base_model == "mistralai/Devstral-Small-2-24B-Instruct-2512"
    assert card.data.library_name == "transformers" and "qlora" in card.data.tags
    results = {r.metric_name: r.metric_value for r in card.data.eval_results}
    assert results == {"perplexity": 3.25, "base perplexity": 4.5}
    assert "| `lora_r` | 16 |" in card.text and "81 optimizer steps" in card.text
    assert "kept 480, train 432, validation 48" in card.text and "too_short" not in card.text
    assert "huggingface-cli upload" in card.text


def test_an_adapter_card_names_peft_and_a_local_base_is_not_a_hub_id(tmp_path: Path) -> None:
    local = tmp_path / "Devstral-Small-2"
    local.mkdir()
    path = write_model_card(
        tmp_path, facts(kind="adapter", base_path=str(local), perplexity=None, base_perplexity=None)
    )
    card = ModelCard.load(path)
    assert card.data.library_name == "peft" and card.data.base_model is None
    assert not card.data.eval_results and "not measured" in card.text
    assert "PeftModel.from_pretrained" in card.text


def test_the_recipe_in_the_card_is_the_jobs_hyperparameters(tmp_path: Path) -> None:
    from dataclasses import asdict

    card = ModelCard.load(write_model_card(tmp_path, facts(hyperparameters=asdict(Hyperparameters()))))
    assert "| `optimizer` | paged_adamw_8bit |" in card.text and "| `lora_dropout` | 0.05 |" in card.text
