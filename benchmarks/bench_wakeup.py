"""How late the machine wakes a real-time thread: the floor under every live graph's xruns.

    python benchmarks/bench_wakeup.py [--seconds 15] [--sleep-ms 1] [--block-ms 5.33]

A thread at the highest real-time priority (where the system allows it; else an ordinary
one, and it says so) sleeps ``--sleep-ms`` at a time for ``--seconds`` and records how much
later than asked it woke. Nothing inside the machine outranks it, so a wake-up later than
an audio block (``--block-ms``, 256 frames at 48 kHz by default) is the machine's own:
on a virtual machine, the hypervisor running other guests (the share of CPU time it took
is printed beside, from /proc/stat; 0 on real hardware). Prints the lateness percentiles,
the wake-ups later than a block, and the stolen share.
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np

from sfgraph.threads import StolenTime


def highest_priority() -> bool:
    """Run this thread at the highest FIFO priority; whether the system allowed it."""
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(os.sched_get_priority_max(os.SCHED_FIFO)))
    except (OSError, AttributeError):
        return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--sleep-ms", type=float, default=1.0)
    parser.add_argument("--block-ms", type=float, default=1000 * 256 / 48000)
    args = parser.parse_args()
    realtime = highest_priority()
    stolen = StolenTime()
    late = []
    end = time.perf_counter() + args.seconds
    while time.perf_counter() < end:
        asked = time.perf_counter()
        time.sleep(args.sleep_ms / 1000)
        late.append(1000 * (time.perf_counter() - asked) - args.sleep_ms)
    late = np.array(late)
    share = stolen.share()
    print(f"{late.size} wake-ups of a thread at {'the highest real-time' if realtime else 'ordinary (real-time refused)'}"
          f" priority, {args.sleep_ms:g} ms asked: late by p50 {np.median(late):.2f} ms, "
          f"p99 {np.percentile(late, 99):.2f}, p99.9 {np.percentile(late, 99.9):.2f}, max {late.max():.2f} ms")
    print(f"later than a block ({args.block_ms:.2f} ms): {(late > args.block_ms).sum()}; "
          f"CPU time stolen by a hypervisor meanwhile: {'unknown' if share is None else f'{100 * share:.1f} %'}")


if __name__ == "__main__":
    main()
