"""The model card of a fine-tuned model: a ``README.md`` that makes its folder hub-ready.

``huggingface-cli upload <repo> <folder>`` publishes the merged model (or the adapter) as it is: the card's
metadata names the base model, the library and the evaluation (perplexity of the base and of the tuned
model on the job's validation split, in the Hub's ``model-index`` form), and its text gives the recipe,
the data it was trained on and how to serve it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: A Hub repository id ("mistralai/Devstral-Small-2-24B-Instruct-2512"); local paths are not one.
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass(frozen=True, slots=True, kw_only=True)
class CardFacts:
    """What the card says about one fine-tuning job."""

    name: str  # the fine-tuned model's served name
    base_model: str  # the served base model id
    base_path: str  # the trainable weights it started from (a folder or a Hub id)
    hyperparameters: Mapping[str, Any]
    dataset: Mapping[str, Any] = field(default_factory=dict)
    perplexity: float | None = None
    base_perplexity: float | None = None
    steps: int | None = None
    kind: str = "merged"  # "merged": full weights; "adapter": a LoRA adapter (peft)
    dtype: str | None = None


def hub_base_model(facts: CardFacts) -> str | None:
    for candidate in (facts.base_path, facts.base_model):
        if HUB_ID.match(candidate) and not Path(candidate).exists():
            return candidate
    return None


def _recipe(hp: Mapping[str, Any]) -> str:
    rows = "\n".join(f"| `{key}` | {value} |" for key, value in hp.items())
    return f"| setting | value |\n| --- | --- |\n{rows}"


def card_text(facts: CardFacts) -> str:
    from huggingface_hub import EvalResult, ModelCardData

    results = [
        EvalResult(
            task_type="text-generation",
            dataset_type="conversations",
            dataset_name="validation split of the logged conversations",
            metric_type="perplexity",
            metric_value=round(value, 4),
            metric_name=label,
        )
        for label, value in (("perplexity", facts.perplexity), ("base perplexity", facts.base_perplexity))
        if value is not None
    ]
    base = hub_base_model(facts)
    adapter = facts.kind == "adapter"
    data = ModelCardData(
        model_name=facts.name,
        base_model=base,
        library_name="peft" if adapter else "transformers",
        pipeline_tag="text-generation",
        tags=["mindfu", "qlora", "lora", "sft", "trl"],
        eval_results=results or None,
    )
    precision = facts.dtype or "the base weights' own dtype"
    what = (
        "a LoRA adapter (load it on the base model with peft, or serve it with vLLM `--enable-lora`)"
        if adapter
        else f"the base model with its LoRA adapter merged in ({precision})"
    )
    stats = {k: v for k, v in facts.dataset.items() if not isinstance(v, dict) and v is not None}
    dataset = ", ".join(f"{key} {value}" for key, value in stats.items()) or "not recorded"
    evaluation = "not measured (no validation split)"
    if facts.perplexity is not None:
        evaluation = f"perplexity {facts.perplexity:.4f} on the validation split"
        if facts.base_perplexity is not None:
            evaluation += f" (base model: {facts.base_perplexity:.4f})"
    load = (
        "from peft import PeftModel\nfrom transformers import AutoModelForCausalLM\n\n"
        f'base = AutoModelForCausalLM.from_pretrained("{base or facts.base_path}", dtype="auto")\n'
        'model = PeftModel.from_pretrained(base, "path/to/this/folder")'
        if adapter
        else "from transformers import AutoModelForCausalLM\n\n"
        'model = AutoModelForCausalLM.from_pretrained("path/to/this/folder", dtype="auto")'
    )
    return f"""---
{data.to_yaml()}
---

# {facts.name}

{facts.name} is {what}, fine-tuned by MindFu with QLoRA on conversations it served
and logged. Base model: `{base or facts.base_model}`.

## Recipe

QLoRA: the base in 4-bit NF4 with double quantization, LoRA on every linear layer, trl's SFTTrainer, paged
AdamW 8-bit{f", {facts.steps} optimizer steps" if facts.steps is not None else ""}.

{_recipe(facts.hyperparameters)}

## Data

Logged conversations kept by MindFu's quality filter: {dataset}.

## Evaluation

{evaluation}.

## Use

```python
{load}
```

Publish this folder as it is: `huggingface-cli upload <your-name>/{facts.name} .`
"""


def write_model_card(folder: Path, facts: CardFacts) -> Path:
    """Write ``folder/README.md`` (replacing peft's template when there is one); returns it."""
    path = folder / "README.md"
    path.write_text(card_text(facts), encoding="utf-8")
    return path
