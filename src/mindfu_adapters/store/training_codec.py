"""Training records as JSON-ready dicts and back (the SQL store keeps specs, progress, outcomes as JSON)."""

from __future__ import annotations

from dataclasses import asdict, fields
from datetime import datetime
from typing import Any

from mindfu_core.domain.conversations import CompletionStatus
from mindfu_core.domain.training import (
    DatasetStats,
    DataSource,
    Hyperparameters,
    JobSpec,
    Progress,
    QualityPolicy,
    RegisterPolicy,
    SplitPolicy,
    TrainingOutcome,
)


def _known(cls: Any, data: dict[str, Any]) -> dict[str, Any]:
    """Only the fields ``cls`` has (a record written by a newer version keeps loading)."""
    names = {f.name for f in fields(cls)}
    return {key: value for key, value in data.items() if key in names}


def spec_to_dict(spec: JobSpec) -> dict[str, Any]:
    out = asdict(spec)
    out["source"] = spec.source.value
    out["register"] = spec.register.value
    out["since"] = spec.since.isoformat() if spec.since else None
    out["quality"]["statuses"] = [s.value for s in spec.quality.statuses]
    return out


def spec_from_dict(data: dict[str, Any]) -> JobSpec:
    quality = dict(data.get("quality") or {})
    quality["statuses"] = tuple(CompletionStatus(s) for s in quality.get("statuses", ["ok"]))
    values = _known(JobSpec, data)
    values.update(
        source=DataSource(data["source"]),
        register=RegisterPolicy(data.get("register", "always")),
        since=datetime.fromisoformat(data["since"]) if data.get("since") else None,
        quality=QualityPolicy(**_known(QualityPolicy, quality)),
        split=SplitPolicy(**_known(SplitPolicy, data.get("split") or {})),
        hyperparameters=Hyperparameters(**_known(Hyperparameters, data.get("hyperparameters") or {})),
    )
    return JobSpec(**values)


def progress_to_dict(progress: Progress) -> dict[str, Any]:
    return asdict(progress)


def progress_from_dict(data: dict[str, Any] | None) -> Progress:
    return Progress(**_known(Progress, data or {}))


def stats_to_dict(stats: DatasetStats | None) -> dict[str, Any] | None:
    return stats.as_dict() if stats is not None else None


def stats_from_dict(data: dict[str, Any] | None) -> DatasetStats | None:
    return DatasetStats(**_known(DatasetStats, data)) if data else None


def outcome_to_dict(outcome: TrainingOutcome | None) -> dict[str, Any] | None:
    if outcome is None:
        return None
    out = asdict(outcome)
    out["notes"] = list(outcome.notes)
    return out


def outcome_from_dict(data: dict[str, Any] | None) -> TrainingOutcome | None:
    if not data:
        return None
    values = _known(TrainingOutcome, data)
    values["notes"] = tuple(values.get("notes") or ())
    return TrainingOutcome(**values)
