"""``mindfu train start | status | cancel | list``: fine-tuning in this process, or through a running MindFu
server (``--server``, over its HTTP or gRPC API); ``--follow`` shows a progress bar.

Without ``--server``, ``start`` runs the job here and follows it to its end (its worker is this process's);
the other actions read and change the data directory's jobs without running any. Schedulers that share a
database (a server's, this one) hold jobs by leases, so none runs a job twice or takes over a running one.
"""

from __future__ import annotations

import asyncio
import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from mindfu_cli.connect import application
from mindfu_core.application import Application
from mindfu_core.domain.training import (
    DataSource,
    JobEvent,
    JobSpec,
    JobStatus,
    QualityPolicy,
    RegisterPolicy,
    TrainingJob,
)
from mindfu_core.errors import MindFuError, NotFound

FINISHED = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)


def _line(job: TrainingJob) -> str:
    progress = job.progress
    step = f"step {progress.step}/{progress.total_steps}" if progress.total_steps else ""
    loss = f"loss {progress.loss:.4f}" if progress.loss is not None else ""
    parts = [job.id, job.status.value, job.spec.base_model, step, loss, job.fine_tuned_model or ""]
    return "  ".join(p for p in parts if p)


async def _follow(app: Application, job: TrainingJob, quiet: bool) -> TrainingJob:
    from tqdm import tqdm

    bar = None if quiet else tqdm(total=0, unit="step", desc=job.id, file=sys.stderr)
    try:
        while job.status not in FINISHED:
            await asyncio.sleep(1.0)
            job = await app.training.get_job(job.id)
            progress = job.progress
            if bar is not None and progress.total_steps:
                bar.total = progress.total_steps
                bar.n = progress.step
                loss = f"{progress.loss:.4f}" if progress.loss is not None else "-"
                bar.set_postfix(status=job.status.value, loss=loss)
                bar.refresh()
    finally:
        if bar is not None:
            bar.close()
    return job


def job_spec(args: dict[str, Any], training_file: str | None) -> JobSpec:
    """The job the command line asks for."""
    spec = JobSpec(
        base_model=args["model"],
        source=DataSource.FILE if training_file else DataSource.CONVERSATIONS,
        training_file=training_file,
        suffix=args.get("suffix") or None,
    )
    hp = spec.hyperparameters
    changes: dict[str, Any] = {}
    if args.get("epochs") is not None:
        changes["epochs"] = float(args["epochs"])
    for name in ("max_steps", "learning_rate", "lora_r"):
        if args.get(name) is not None:
            changes[name] = args[name]
    spec = replace(spec, hyperparameters=replace(hp, **changes))
    if args.get("experiment"):
        spec = replace(spec, experiment=args["experiment"])
    if args.get("register"):
        spec = replace(spec, register=RegisterPolicy(args["register"]))
    if args.get("min_turns") is not None:
        spec = replace(spec, quality=QualityPolicy(min_turns=args["min_turns"]))
    return spec


async def _latest(app: Application) -> TrainingJob:
    newest = (await app.training.list_jobs(limit=1)).items
    if not newest:
        raise NotFound("no fine-tuning job has been started")
    return newest[0]


def _event_line(event: JobEvent) -> str:
    return f"  [{event.level}] {event.message}"


async def _run(action: str, args: dict[str, Any]) -> int:
    from mindfu_http.training.wire import job_object  # the API's JSON shape for --json

    server = args.get("server")
    here = server is None and action == "start"  # the job runs in this process
    async with application(server, training=here) as app:
        if action == "start":
            training_file = None
            if args.get("file"):
                path = Path(args["file"])
                data = await asyncio.to_thread(path.read_bytes)
                uploaded = await app.training.upload_file(data, filename=path.name)
                training_file = uploaded.id
                print(f"uploaded {args['file']} as {training_file} ({uploaded.examples} examples)")
            job = await app.training.create_job(job_spec(args, training_file))
            print(_line(job))
            if job.status is JobStatus.FAILED:
                print(f"mindfu: {job.error}", file=sys.stderr)
                return 1
            if args.get("follow") or here:  # a job run here ends with this process: it is followed
                job = await _follow(app, job, bool(args.get("quiet")))
                print(_line(job))
            return 1 if job.status is JobStatus.FAILED else 0
        if action == "status":
            job = await (app.training.get_job(args["job_id"]) if args.get("job_id") else _latest(app))
            if args.get("follow"):
                job = await _follow(app, job, bool(args.get("quiet")))
            if args.get("json"):
                print(json.dumps(job_object(job), indent=2))
            else:
                print(_line(job))
                events = (await app.training.events(job.id, limit=10)).items
                for event in reversed(events):
                    print(_event_line(event))
                if job.error:
                    print(f"  error: {job.error}")
            return 1 if job.status is JobStatus.FAILED else 0
        if action == "cancel":
            print(_line(await app.training.cancel_job(args["job_id"])))
            return 0
        page = await app.training.list_jobs(limit=int(args.get("limit") or 20))
        if args.get("json"):
            listed = {
                "object": "list",
                "data": [job_object(j) for j in page.items],
                "has_more": page.has_more,
            }
            print(json.dumps(listed, indent=2))
        else:
            for job in page.items:
                print(_line(job))
        return 0


def train(action: str, args: dict[str, Any]) -> int:
    try:
        return asyncio.run(_run(action, args))
    except (MindFuError, OSError) as error:
        print(f"mindfu: {error.message if isinstance(error, MindFuError) else error}", file=sys.stderr)
        return 1
