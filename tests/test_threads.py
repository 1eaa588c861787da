"""The thread policy: OpenMP threads wait passively unless the user says otherwise."""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import types

import pytest
import torch

from sfgraph.threads import (CpuShare, StolenTime, available_cores, numpy_blas_threads, realtime_priority,
                             use_threads)

PROBE = "import os, sfgraph, torch; print(os.environ['OMP_WAIT_POLICY'])"


@pytest.mark.parametrize("given, expected", [(None, "PASSIVE"), ("ACTIVE", "ACTIVE")])
def test_importing_sfgraph_sets_passive_waiting_unless_set(given, expected):
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if given:
        env["OMP_WAIT_POLICY"] = given
    result = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == expected


def test_cpu_share_counts_other_processes_cores_and_gives_at_least_one_thread():
    share = CpuShare()
    sum(i * i for i in range(300_000))  # this process's own work is left out
    others = share.others_busy()
    assert 0.0 <= others <= os.cpu_count() + 0.5
    assert 1 <= share.threads() <= available_cores()


def test_stolen_time_is_a_share_of_the_machine_cpu_time_since_creation(monkeypatch):
    import sfgraph.threads as threads

    stolen = StolenTime()
    sum(i * i for i in range(300_000))
    assert 0.0 <= stolen.share() <= 1.0  # this Linux machine has /proc/stat
    # 1 s of steal across the machine's cores over 2 s of wall time
    ticks = os.sysconf("SC_CLK_TCK")
    samples = iter([[0] * 10, [0] * 7 + [ticks] + [0, 0]])
    clock = iter([100.0, 102.0, 103.0, 104.0])
    monkeypatch.setattr(threads, "_machine_ticks", lambda: next(samples))
    monkeypatch.setattr(threads, "time", types.SimpleNamespace(monotonic=lambda: next(clock)))
    assert StolenTime().share() == pytest.approx(0.5 / os.cpu_count())
    monkeypatch.setattr(threads, "_machine_ticks", lambda: None)  # no /proc/stat
    assert StolenTime().share() is None


def test_use_threads_defaults_to_the_idle_cores_it_may_use():
    before = torch.get_num_threads()
    try:
        assert use_threads(1) == 1 and torch.get_num_threads() == 1
        chosen = use_threads()
        assert 1 <= chosen <= available_cores() and torch.get_num_threads() == chosen
    finally:
        torch.set_num_threads(before)


def test_numpy_blas_threads_holds_inside_the_block_only():
    import scipy.linalg.cython_blas  # noqa: F401  (the block loads scipy's BLAS: load it before counting)
    from threadpoolctl import threadpool_info

    def blas_threads():
        return {pool["filepath"]: pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"}

    before = blas_threads()
    assert before  # numpy's OpenBLAS
    with numpy_blas_threads(1):
        assert set(blas_threads().values()) == {1}
    assert blas_threads() == before


def test_realtime_priority_applies_to_the_calling_thread_only_where_allowed():
    seen = {}

    def worker():
        seen["granted"] = realtime_priority()
        seen["policy"] = os.sched_getscheduler(0)

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert seen["policy"] == (os.SCHED_RR if seen["granted"] else os.SCHED_OTHER)
    assert os.sched_getscheduler(0) == os.SCHED_OTHER  # this thread is left as it was
