"""Fine-tuning turned off (``MINDFU_TRAINING__ENABLED=false``): every fine-tuning route answers 404 with the
setting's name, in one process and through a gateway whose core has it off (gRPC NOT_FOUND mapped back)."""

from __future__ import annotations

import pytest

from mindfu_core.application import TrainingUnavailable
from mindfu_core.errors import NotFound
from tests.conftest import AppFactory


def test_every_fine_tuning_route_says_it_is_turned_off(make_client: AppFactory) -> None:
    with make_client(training={"enabled": False}) as client:
        calls = [
            client.get("/v1/fine_tuning/jobs"),
            client.get("/v1/fine_tuning/jobs/ftjob-1"),
            client.post("/v1/fine_tuning/jobs/ftjob-1/cancel"),
            client.get("/v1/files"),
            client.post("/v1/files", files={"file": ("t.jsonl", b"{}")}, data={"purpose": "fine-tune"}),
            client.post("/train/start", json={"num_epochs": 3, "experiment_name": "my-finetune"}),
            client.get("/train/status"),
        ]
        for answer in calls:
            assert answer.status_code == 404, (answer.request.url, answer.text)
            error = answer.json()["error"]
            assert "MINDFU_TRAINING__ENABLED" in error["message"], (answer.request.url, error)
        # the rest of the server is unaffected
        assert client.get("/v1/models").status_code == 200


async def test_each_refusal_is_its_own_error() -> None:
    """A fresh error per call: one instance raised again and again would grow its traceback forever."""
    off = TrainingUnavailable(NotFound("fine-tuning is turned off"))
    caught = []
    for _ in range(3):
        with pytest.raises(NotFound, match="turned off") as refused:
            await off.list_jobs()
        caught.append(refused.value)
    assert len({id(error) for error in caught}) == 3 and off.error.__traceback__ is None
