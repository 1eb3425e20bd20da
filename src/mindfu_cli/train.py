"""``mindfu train start | status | cancel | list | upload``: fine-tuning through a running MindFu server
(training runs beside the engine, in the server's worker processes); ``--follow`` shows a progress bar."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

from mindfu_cli.remote import RemoteApi, RemoteError

DEFAULT_SERVER = "http://127.0.0.1:11434"
FINISHED = ("succeeded", "failed", "cancelled")


class TrainingApi(RemoteApi):
    """The fine-tuning routes of a running server."""

    async def upload(self, path: Path) -> dict[str, Any]:
        with path.open("rb") as source:
            files = {"file": (path.name, source.read(), "application/jsonl")}
        return await self._call("POST", "/v1/files", files=files, data={"purpose": "fine-tune"})

    async def create(self, body: dict[str, Any]) -> dict[str, Any]:
        return await self._call("POST", "/v1/fine_tuning/jobs", json=body)

    async def get(self, job_id: str) -> dict[str, Any]:
        return await self._call("GET", f"/v1/fine_tuning/jobs/{job_id}")

    async def latest(self) -> dict[str, Any]:
        return await self._call("GET", "/train/status")

    async def cancel(self, job_id: str) -> dict[str, Any]:
        return await self._call("POST", f"/v1/fine_tuning/jobs/{job_id}/cancel")

    async def list(self, limit: int) -> dict[str, Any]:
        return await self._call("GET", "/v1/fine_tuning/jobs", params={"limit": limit})

    async def events(self, job_id: str) -> dict[str, Any]:
        return await self._call("GET", f"/v1/fine_tuning/jobs/{job_id}/events", params={"limit": 99})


def _line(job: dict[str, Any]) -> str:
    progress = job["mindfu"]["progress"]
    step = f"step {progress['step']}/{progress['total_steps']}" if progress["total_steps"] else ""
    loss = f"loss {progress['loss']:.4f}" if progress.get("loss") is not None else ""
    model = job.get("fine_tuned_model") or ""
    parts = [job["id"], job["status"], job["model"], step, loss, model]
    return "  ".join(p for p in parts if p)


async def _follow(api: TrainingApi, job: dict[str, Any], quiet: bool) -> dict[str, Any]:
    from tqdm import tqdm

    bar = None if quiet else tqdm(total=0, unit="step", desc=job["id"], file=sys.stderr)
    try:
        while job["status"] not in FINISHED:
            await asyncio.sleep(1.0)
            job = await api.get(job["id"])
            progress = job["mindfu"]["progress"]
            if bar is not None and progress["total_steps"]:
                bar.total = progress["total_steps"]
                bar.n = progress["step"]
                loss = progress.get("loss")
                bar.set_postfix(status=job["status"], loss=f"{loss:.4f}" if loss is not None else "-")
                bar.refresh()
    finally:
        if bar is not None:
            bar.close()
    return job


def _body(args: dict[str, Any], training_file: str | None) -> dict[str, Any]:
    extra: dict[str, Any] = {}
    if training_file is None:
        extra["source"] = "conversations"
    for name in ("max_steps", "learning_rate", "lora_r", "experiment"):
        if args.get(name) is not None:
            extra[name] = args[name]
    if args.get("register"):
        extra["register"] = args["register"]
    if args.get("min_turns") is not None:
        extra["quality"] = {"min_turns": args["min_turns"]}
    body: dict[str, Any] = {"model": args["model"], "mindfu": extra}
    if training_file is not None:
        body["training_file"] = training_file
    if args.get("epochs") is not None:
        body["hyperparameters"] = {"n_epochs": args["epochs"]}
    if args.get("suffix"):
        body["suffix"] = args["suffix"]
    return body


async def _run(action: str, args: dict[str, Any]) -> int:
    api = TrainingApi(args.get("server") or DEFAULT_SERVER, os.environ.get("MINDFU_API_KEY"))
    try:
        if action == "start":
            training_file = None
            if args.get("file"):
                uploaded = await api.upload(Path(args["file"]))
                training_file = uploaded["id"]
                print(
                    f"uploaded {args['file']} as {training_file} ({uploaded['mindfu']['examples']} examples)"
                )
            job = await api.create(_body(args, training_file))
            print(_line(job))
            if job["status"] == "failed":
                print(f"mindfu: {job['error']['message']}", file=sys.stderr)
                return 1
            if args.get("follow"):
                job = await _follow(api, job, bool(args.get("quiet")))
                print(_line(job))
            return 0 if job["status"] != "failed" else 1
        if action == "status":
            job = await (api.get(args["job_id"]) if args.get("job_id") else api.latest())
            if args.get("follow"):
                job = await _follow(api, job, bool(args.get("quiet")))
            if args.get("json"):
                print(json.dumps(job, indent=2))
            else:
                print(_line(job))
                for event in reversed((await api.events(job["id"]))["data"][:10]):
                    print(f"  [{event['level']}] {event['message']}")
                if job.get("error"):
                    print(f"  error: {job['error']['message']}")
            return 1 if job["status"] == "failed" else 0
        if action == "cancel":
            print(_line(await api.cancel(args["job_id"])))
            return 0
        listed = await api.list(int(args.get("limit") or 20))
        if args.get("json"):
            print(json.dumps(listed, indent=2))
        else:
            for job in listed["data"]:
                print(_line(job))
        return 0
    except RemoteError as error:
        print(f"mindfu: {error}", file=sys.stderr)
        return 1
    finally:
        await api.aclose()


def train(action: str, args: dict[str, Any]) -> int:
    return asyncio.run(_run(action, args))
