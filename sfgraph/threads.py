"""How torch's OpenMP threads wait and how many run, on a CPU other processes may share.

Two ways a shared CPU collapses torch (measured on 2 cores beside other busy
processes, issue 16): libgomp's idle threads spin after each parallel region, holding a
core another thread needs; and every parallel op waits for its whole team, so a team as
wide as the machine stalls whenever another process holds one of its cores. A training
step of the bundled recipe took 34-41 s with 2 spinning threads, 10-23 s with 2 passive
ones, and 2-3 s with one. So:

- ``wait_passively``: idle OpenMP threads sleep. libgomp reads ``OMP_WAIT_POLICY`` once,
  when torch loads it, so this runs on ``import sfgraph``, before any sfgraph module
  imports torch; a value the user set is kept.
- ``use_threads``: as many threads as cores are idle when the job starts (at least one),
  unless the user gives a count.
- ``torch_threads``: one thread for the small ops of a network run a few frames at a time
  (the parameter network, CREPE, the multi-F0 network), where a team costs more than it
  saves.

Numba: sfgraph's kernels are serial (no ``parallel=True``), so Numba starts no threads.
"""
from __future__ import annotations

import contextlib
import os
import time


def wait_passively() -> None:
    """Make OpenMP threads sleep when idle, unless ``OMP_WAIT_POLICY`` is already set."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity, which taskset and cgroups narrow)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def idle_cores(seconds: float = 0.2) -> float | None:
    """Cores of the machine left idle over the next ``seconds`` (from /proc/stat); None where unknown."""
    def cpu_times():
        with open("/proc/stat") as stat:
            values = [int(v) for v in stat.readline().split()[1:]]
        return values[3] + values[4], sum(values)  # idle + iowait, all

    try:
        idle_before, total_before = cpu_times()
        time.sleep(seconds)
        idle_after, total_after = cpu_times()
    except (OSError, ValueError, IndexError):
        return None
    busy_share = 1.0 - (idle_after - idle_before) / max(1, total_after - total_before)
    return (os.cpu_count() or 1) * (1.0 - busy_share)


def default_threads() -> int:
    """Threads for a torch job starting now: the idle cores it may use, at least one."""
    idle = idle_cores()
    cores = available_cores()
    return cores if idle is None else max(1, min(cores, int(idle + 0.5)))


def use_threads(threads: int | None = None) -> int:
    """Run torch's CPU ops on ``threads`` threads (default ``default_threads()``); returns the count."""
    import torch

    count = threads or default_threads()
    torch.set_num_threads(count)
    return count


@contextlib.contextmanager
def torch_threads(threads: int):
    """Run torch's CPU ops on ``threads`` threads inside the block (restored after)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)
