"""Thread counts follow the CPUs the process may use; pool workers use one thread; idle threads sleep."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor

import pytest

from intelligible.core.errors import ConfigError
from intelligible.core.threads import (
    ENV_OVERRIDE,
    available_cpus,
    cgroup_cpu_limit,
    configure_threads,
    single_thread_worker,
)


def test_cgroup_v2_quota(tmp_path):
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert cgroup_cpu_limit(tmp_path) == 2  # 1.5 CPUs of quota: two threads can use it
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert cgroup_cpu_limit(tmp_path) is None


def test_cgroup_v1_quota(tmp_path):
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("100000\n")
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert cgroup_cpu_limit(tmp_path) == 1
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")
    assert cgroup_cpu_limit(tmp_path) is None
    assert cgroup_cpu_limit(tmp_path / "missing") is None


def test_available_cpus_is_within_the_affinity_mask_and_obeys_the_override(monkeypatch):
    monkeypatch.delenv(ENV_OVERRIDE, raising=False)
    assert 1 <= available_cpus() <= len(os.sched_getaffinity(0))
    monkeypatch.setenv(ENV_OVERRIDE, "3")
    assert available_cpus() == 3
    for bad in ("0", "-2", "two"):
        monkeypatch.setenv(ENV_OVERRIDE, bad)
        with pytest.raises(ConfigError, match=f"{ENV_OVERRIDE} must be a positive whole number"):
            available_cpus()


def test_configure_threads_sets_torch(monkeypatch):
    import torch

    import intelligible.lm.saes  # noqa: F401 - loads the numba kernels, as a study does

    before = torch.get_num_threads()
    try:
        assert configure_threads(1) == 1
        assert torch.get_num_threads() == 1
        with pytest.raises(ConfigError):
            configure_threads(0)
    finally:
        torch.set_num_threads(before)


def _threads_in_worker() -> tuple[int, str]:
    import torch

    return torch.get_num_threads(), os.environ["OMP_NUM_THREADS"]


def test_pool_workers_use_one_thread():
    with ProcessPoolExecutor(max_workers=1, initializer=single_thread_worker) as pool:
        assert pool.submit(_threads_in_worker).result() == (1, "1")


def _environment_after_import(env: dict[str, str]) -> dict:
    probe = (
        "import json, os, intelligible, torch; "
        "print(json.dumps({k: os.environ.get(k) for k in ('OMP_NUM_THREADS', 'OMP_WAIT_POLICY')}"
        " | {'torch': torch.get_num_threads()}))"
    )
    clean = {
        k: v for k, v in os.environ.items() if not k.startswith(("OMP_", "MKL_", "NUMBA_", "INTELLIGIBLE_"))
    }
    out = subprocess.run(
        [sys.executable, "-c", probe], env={**clean, **env}, capture_output=True, text=True, check=True
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_import_sets_passive_waits_and_counted_threads_but_keeps_the_users_choice():
    facts = _environment_after_import({})
    assert facts["OMP_WAIT_POLICY"] == "PASSIVE"
    assert facts["OMP_NUM_THREADS"] == str(facts["torch"])
    assert 1 <= facts["torch"] <= len(os.sched_getaffinity(0))
    assert _environment_after_import({ENV_OVERRIDE: "1"})["torch"] == 1
    users = _environment_after_import({"OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "ACTIVE"})
    assert users == {"OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "ACTIVE", "torch": 1}
