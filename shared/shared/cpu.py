"""How many CPUs this process may really use: the container's CPU limit (cgroup ``cpu.max``,
or cgroup v1's CFS quota) and the CPU affinity, not the node's core count, which is what
``os.cpu_count()`` reports inside a container."""
from __future__ import annotations

import math
import os
from pathlib import Path

CGROUP = Path("/sys/fs/cgroup")


def cgroup_cpu_limit(root: Path = CGROUP) -> float | None:
    """CPUs allowed by the cgroup quota; None when unlimited or not readable."""
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]   # cgroup v2: "200000 100000" or "max 100000"
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota_us = int((root / "cpu" / "cpu.cfs_quota_us").read_text())   # cgroup v1: -1 when unlimited
        period_us = int((root / "cpu" / "cpu.cfs_period_us").read_text())
        return None if quota_us <= 0 else quota_us / period_us
    except (OSError, ValueError):
        return None


def available_cpus(root: Path = CGROUP) -> int:
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cpus = os.cpu_count() or 1
    limit = cgroup_cpu_limit(root)
    if limit is not None:
        cpus = min(cpus, max(1, math.ceil(limit)))
    return max(1, cpus)


def threads_per_worker(workers: int, root: Path = CGROUP) -> int:
    """CPU-bound threads for one of ``workers`` processes sharing the container's CPUs."""
    return max(1, available_cpus(root) // max(1, workers))
