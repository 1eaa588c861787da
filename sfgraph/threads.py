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
- ``numpy_blas_threads``: numpy's OpenBLAS (and scipy's, which Numba's ``np.dot`` calls) on
  one thread where sfgraph's own products run (the parameter network without torch,
  ``sfgraph.model.inference``; the training GRUs' recurrence, ``sfgraph.model.gru``). Its team spins too:
  those products on 60 s took 2.6 s with a team of two on the busy machine and 0.2 s on
  one thread, and a whole render 12.0 against 3.4 s. Set at run time (threadpoolctl, about
  8 µs a block), since an environment variable acts only if it comes before numpy's import.
- ``use_threads``: as many threads as cores other processes leave idle when the job
  starts (at least one), unless the user gives a count; ``StepThreads`` measures that share
  again every 10 steps of a loop of optimisation steps (training, ``--adapt``, the
  salience network's training, the fitted baseline), so a job that arrives later does not
  stall a team.
- ``torch_threads``: one thread for the small ops of a network run a few frames at a time
  (the parameter network, CREPE, the multi-F0 network), where a team costs more than it
  saves.
- ``realtime_priority``: the live worker runs above ordinary processes (see
  ``sfgraph.engine.live``), so an offline job beside it does not make the audio late.
- ``StolenTime``: how much CPU time a virtual machine's hypervisor took during a live run,
  the cause of the late callbacks no priority inside the machine prevents.

Numba: sfgraph's kernels are serial (no ``parallel=True``), so Numba starts no threads.
"""
from __future__ import annotations

import contextlib
import functools
import os
import time


def wait_passively() -> None:
    """Make OpenMP threads sleep when idle, unless ``OMP_WAIT_POLICY`` is already set."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity, which taskset and cgroups narrow)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _machine_ticks() -> list[int] | None:
    """The whole machine's CPU time so far, in clock ticks, as /proc/stat's first line gives it
    (user, nice, system, idle, iowait, irq, softirq, steal, …); None where unknown."""
    try:
        with open("/proc/stat") as stat:
            return [int(v) for v in stat.readline().split()[1:]]
    except (OSError, ValueError):
        return None


def _cpu_sample() -> tuple[float, float, float] | None:
    """(busy core-seconds of the whole machine, wall seconds, this process's CPU seconds); None where unknown."""
    values = _machine_ticks()
    if values is None:
        return None
    times = os.times()
    busy_ticks = sum(values[:8]) - values[3] - values[4]  # user … steal, less idle and iowait
    return busy_ticks / os.sysconf("SC_CLK_TCK"), time.monotonic(), times.user + times.system


class CpuShare:
    """How many cores other processes keep busy, between calls (this process's own use left out)."""

    def __init__(self):
        self.last = _cpu_sample()

    def others_busy(self) -> float | None:
        """Cores other processes kept busy since the last call (or creation); None where unknown."""
        now = _cpu_sample()
        if now is None or self.last is None or now[1] <= self.last[1]:
            return None
        (busy, wall, own), (busy_before, wall_before, own_before) = now, self.last
        self.last = now
        return max(0.0, (busy - busy_before) - (own - own_before)) / (wall - wall_before)

    def threads(self) -> int:
        """Threads for the next stretch of work: the cores others left idle that this process
        may use, at least one (every available core when unknown)."""
        others = self.others_busy()
        cores = available_cores()
        return cores if others is None else max(1, min(cores, int((os.cpu_count() or 1) - others + 0.5)))


class StolenTime:
    """The share of the machine's CPU time its hypervisor gave to other guests, between
    creation and ``share()``: on a virtual machine, every thread, even a real-time one, stops
    while its virtual CPU is not running, which no scheduling inside the machine can help
    (the "steal" column of /proc/stat; 0 on real hardware)."""

    def __init__(self):
        self.start = _machine_ticks(), time.monotonic()

    def share(self) -> float | None:
        """Stolen core-seconds per core and wall second since creation; None where unknown."""
        (before, started), now = self.start, _machine_ticks()
        wall = time.monotonic() - started
        if before is None or now is None or len(now) < 8 or wall <= 0:
            return None
        stolen = (now[7] - before[7]) / os.sysconf("SC_CLK_TCK")
        return max(0.0, stolen / (wall * (os.cpu_count() or 1)))


def default_threads() -> int:
    """Threads for a torch job starting now: the cores others leave idle (over 0.2 s), at least one."""
    share = CpuShare()
    time.sleep(0.2)
    return share.threads()


def use_threads(threads: int | None = None) -> int:
    """Run torch's CPU ops on ``threads`` threads (default ``default_threads()``); returns the count."""
    import torch

    count = threads or default_threads()
    torch.set_num_threads(count)
    return count


class StepThreads:
    """Torch's threads for a loop of optimisation steps: ``threads`` throughout, or (None) the
    cores other processes leave idle, measured at the start and again every ``check_every`` steps."""

    def __init__(self, threads: int | None, check_every: int = 10):
        self.count = use_threads(threads)
        self.share = CpuShare() if threads is None else None
        self.check_every = check_every

    def step_done(self, step: int) -> None:
        """After step number ``step`` (from 1): every ``check_every`` steps, fit the count to the idle cores."""
        if self.share is not None and step % self.check_every == 0:
            import torch

            self.count = self.share.threads()
            torch.set_num_threads(self.count)


@contextlib.contextmanager
def torch_threads(threads: int | None):
    """Run torch's CPU ops on ``threads`` threads inside the block (restored after);
    None leaves the count as it is."""
    import torch

    before = torch.get_num_threads()
    if threads is None or before == threads:  # setting it, even unchanged, every block made the live worker late
        yield
        return
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@functools.cache
def _blas_pools():
    # scipy's BLAS is the one Numba kernels' np.dot calls (the training GRUs', sfgraph.model.gru);
    # Numba loads it on its first call anyway, so importing it here costs nothing more
    import scipy.linalg.cython_blas  # noqa: F401
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()  # the BLAS libraries loaded now: numpy's and scipy's


@contextlib.contextmanager
def numpy_blas_threads(threads: int):
    """Run numpy's BLAS, and scipy's that Numba's ``np.dot`` calls, on ``threads`` threads
    inside the block (restored after)."""
    with _blas_pools().limit(limits=threads, user_api="blas"):
        yield


def realtime_priority() -> bool:
    """Run the calling thread under real-time round-robin scheduling at the lowest priority, as
    audio software runs its processing threads, where the system allows it (root, or an
    ``rtprio`` limit as music machines give their audio group); returns whether it does. Above
    every ordinary process, it is no longer preempted by an offline job or other busy
    processes while it holds the GIL the audio callback waits for; below the audio server's
    and callback's threads, it cannot delay them. The kernel keeps a share of every second
    for ordinary processes (``sched_rt_runtime_us``), so a graph too heavy cannot freeze the machine."""
    try:
        os.sched_setscheduler(0, os.SCHED_RR, os.sched_param(os.sched_get_priority_min(os.SCHED_RR)))
    except (OSError, AttributeError):  # no permission, or no such scheduling on this system
        return False
    return True
