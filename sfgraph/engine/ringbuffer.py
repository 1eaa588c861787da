"""Lock-free single-producer / single-consumer rings of audio frames.

The audio callback and the worker thread exchange audio through these rings and
nothing else: no locks, no waiting, no buffer allocation on either side.
"""
from __future__ import annotations

import numpy as np


class FrameRing:
    """A ring of ``capacity`` frames of ``channels`` float32 samples, (frames, channels)
    as sounddevice hands them over, addressed by absolute frame position.

    One thread writes, one thread reads. Frame ``p`` of the stream lives in slot
    ``p % capacity``. ``written`` (frames written so far) is set by the writer only,
    after the frames are copied, so a reader never sees a frame before it is
    complete; under CPython assigning an int attribute is atomic, which is all
    the synchronisation needed.

    The reader says which positions it wants, so a missed deadline never shifts the
    timeline: frames not yet written read as zeros (``missing``), and frames already
    overwritten by a writer more than ``capacity`` ahead read as zeros (``lost``).
    The writer always writes and never waits; frames it writes for positions the
    reader has already passed are simply never read.
    """

    def __init__(self, channels: int, capacity: int):
        self.channels = channels
        self.capacity = capacity
        self._slots = np.zeros((capacity, channels), dtype=np.float32)
        self.written = 0

    # -- writer ---------------------------------------------------------------
    def write(self, frames: np.ndarray) -> None:
        """Append (n, channels) frames; n may exceed nothing but ``capacity``."""
        n = frames.shape[0]
        start = self.written % self.capacity
        first = min(n, self.capacity - start)
        self._slots[start:start + first] = frames[:first]
        if first < n:
            self._slots[:n - first] = frames[first:]
        self.written += n

    def write_zeros(self, n: int) -> None:
        """Append ``n`` frames of silence (priming an output ring)."""
        while n > 0:
            start = self.written % self.capacity
            step = min(n, self.capacity - start)
            self._slots[start:start + step] = 0.0
            self.written += step
            n -= step

    # -- reader ---------------------------------------------------------------
    def read_into(self, out: np.ndarray, position: int) -> tuple[int, int]:
        """Copy frames ``[position, position + len(out))`` into ``out`` (n, channels).

        Returns ``(missing, lost)``: frames not written yet and frames already
        overwritten; both are zeros in ``out``.
        """
        n = out.shape[0]
        written = self.written
        valid_from = max(position, written - self.capacity)
        valid_to = min(position + n, written)
        if valid_to <= valid_from:
            out[:] = 0.0
            return min(n, max(0, position + n - written)), min(n, max(0, valid_from - position))
        head, tail = valid_from - position, valid_to - position
        if head:
            out[:head] = 0.0
        if tail < n:
            out[tail:] = 0.0
        start = valid_from % self.capacity
        first = min(tail - head, self.capacity - start)
        out[head:head + first] = self._slots[start:start + first]
        if head + first < tail:
            out[head + first:tail] = self._slots[:tail - head - first]
        # the writer may have lapped us while we copied: what it overwrote is lost
        overwritten = min(self.written - self.capacity - position, tail)
        if overwritten > head:
            out[head:overwritten] = 0.0
            head = overwritten
        return n - tail, head
