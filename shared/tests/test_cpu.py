"""CPU budget from the cgroup (what argon2's thread pool is sized by)."""
import os

from shared.cpu import available_cpus, cgroup_cpu_limit, threads_per_worker


def test_cgroup_v2_quota_bounds_the_cpus(tmp_path):
    (tmp_path / "cpu.max").write_text("150000 100000\n")      # 1.5 CPUs
    assert cgroup_cpu_limit(tmp_path) == 1.5
    assert available_cpus(tmp_path) == min(2, len(os.sched_getaffinity(0)))
    assert threads_per_worker(2, tmp_path) == 1
    (tmp_path / "cpu.max").write_text("50000 100000\n")       # half a CPU still gets one thread
    assert available_cpus(tmp_path) == 1


def test_unlimited_or_missing_cgroup_uses_the_affinity(tmp_path):
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert cgroup_cpu_limit(tmp_path) is None
    assert available_cpus(tmp_path) == len(os.sched_getaffinity(0))
    assert cgroup_cpu_limit(tmp_path / "nowhere") is None


def test_cgroup_v1_quota(tmp_path):
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("100000\n")
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert cgroup_cpu_limit(tmp_path) == 1.0
    assert threads_per_worker(4, tmp_path) == 1
