"""What every benchmark here shares: CPU accounting (how busy was the rest of the machine?), order
rotation for interleaved rounds, percentiles, and the machine description written with the results."""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib.metadata
import json
import os
import platform
import statistics
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(slots=True, frozen=True)
class CpuSnapshot:
    at: float  # time.monotonic()
    busy_s: float  # all CPUs, everything but idle and iowait (/proc/stat)
    steal_s: float  # time the hypervisor ran something else on our virtual CPUs
    own_s: float  # this process and the given child processes (user + system)


def _clock_ticks() -> float:
    try:
        return float(os.sysconf("SC_CLK_TCK"))
    except (ValueError, OSError, AttributeError):
        return 100.0


def _proc_cpu_s(pid: int, ticks: float) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    # after the command name: state is field 3, utime/stime are fields 14/15 (1-based, whole line)
    return (int(fields[11]) + int(fields[12])) / ticks


def cpu_snapshot(child_pids: Iterable[int] = ()) -> CpuSnapshot | None:
    """Machine-wide and own CPU time so far (children's too); ``None`` where /proc is missing (not Linux)."""
    ticks = _clock_ticks()
    try:
        line = Path("/proc/stat").read_text().splitlines()[0].split()
    except OSError:
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in line[1:9])
    times = os.times()
    own = times.user + times.system + sum(_proc_cpu_s(pid, ticks) for pid in child_pids)
    return CpuSnapshot(
        at=time.monotonic(),
        busy_s=(user + nice + system + irq + softirq) / ticks,
        steal_s=steal / ticks,
        own_s=own,
    )


def foreign_load(start: CpuSnapshot | None, end: CpuSnapshot | None) -> dict[str, float] | None:
    """CPU used by processes other than this benchmark's between two snapshots, in cores (1.0 = one core)."""
    if start is None or end is None or end.at <= start.at:
        return None
    wall = end.at - start.at
    foreign = max(0.0, (end.busy_s - start.busy_s) - (end.own_s - start.own_s))
    return {
        "wall_s": wall,
        "own_cores": (end.own_s - start.own_s) / wall,
        "foreign_cores": foreign / wall,
        "steal_cores": (end.steal_s - start.steal_s) / wall,
    }


@contextlib.contextmanager
def measured_load(loads: dict[str, Any], part: str) -> Iterator[None]:
    """Records ``foreign_load`` over the block in ``loads[part]``."""
    start = cpu_snapshot()
    try:
        yield
    finally:
        loads[part] = foreign_load(start, cpu_snapshot())


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    lo, hi = int(pos), min(int(pos) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def rotation(items: Sequence[str], step: int) -> list[str]:
    """``items`` rotated left by ``step``: A B C, B C A, C A B, ..."""
    k = step % len(items)
    return [*items[k:], *items[:k]]


def mark(ok: bool) -> str:
    return "ok" if ok else "MISS"


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "-"


def machine_info(packages: Iterable[str] = ()) -> dict[str, Any]:
    """Date, platform, CPU, memory, Python, and the versions of ``packages`` (distribution names)."""
    memory = None
    with contextlib.suppress(OSError, ValueError, IndexError):
        memory = int(Path("/proc/meminfo").read_text().split()[1]) // 1024  # MiB
    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "platform": platform.platform(),
        "processor": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "memory_mib": memory,
        "python": platform.python_version(),
        **{name.replace("-", "_"): _version(name) for name in packages},
    }


def finish(
    results: dict[str, Any], args: Any, elapsed: float, *, packages: Iterable[str], targets: dict[str, Any]
) -> None:
    """Print the run's notes and duration; with ``--json PATH``, write the results, the machine and the
    configuration there."""
    if results["notes"]:
        print()
        print("notes:")
        for note in results["notes"]:
            print(f"  - {note}")
    print(f"\n(total {elapsed:.0f} s)")
    if args.json is None:
        return
    args.json.parent.mkdir(parents=True, exist_ok=True)
    config = {
        key: str(value) if isinstance(value, Path) else value
        for key, value in vars(args).items()
        if key not in ("json", "only")
    }
    payload = {
        "machine": machine_info(packages),
        "config": config,
        "elapsed_s": elapsed,
        "targets": targets,
        **results,
    }
    args.json.write_text(json.dumps(payload, indent=2, default=str) + "\n", encoding="utf-8")
    print(f"wrote {args.json}")
