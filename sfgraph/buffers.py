"""Streaming buffers, below both the engine and the nodes.

``Fifo`` queues items between nodes (the scheduler's edges) and inside nodes that
hold input back (a plugin's latency). ``FrameRing`` is the lock-free ring through
which the live engine's audio callback and its worker exchange a device's audio,
and that device endpoint nodes read and write (``sfgraph.graph.node``).
"""
from __future__ import annotations

import numpy as np


class Fifo:
    """A first-in first-out queue of items along the last axis of float32 arrays.

    Shape ``(*lead, capacity)``; grows by doubling when a push does not fit, so that
    steady-state streaming (live) never allocates.
    """

    def __init__(self, lead_shape: tuple[int, ...], capacity: int = 4096):
        self.lead_shape = tuple(lead_shape)
        self._data = np.zeros(self.lead_shape + (max(1, capacity),), dtype=np.float32)
        self.capacity = self._data.shape[-1]
        self._start = 0
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def push(self, block: np.ndarray) -> None:
        n = block.shape[-1]
        if n == 0:
            return
        if self._size + n > self.capacity:
            self._grow(self._size + n)
        end = (self._start + self._size) % self.capacity
        first = min(n, self.capacity - end)
        self._data[..., end:end + first] = block[..., :first]
        if first < n:
            self._data[..., :n - first] = block[..., first:]
        self._size += n

    def push_zeros(self, n: int) -> None:
        self.push(np.zeros(self.lead_shape + (n,), dtype=np.float32))

    def pop(self, n: int) -> np.ndarray:
        """Remove and return the oldest ``n`` items (a new array)."""
        if n > self._size:
            raise ValueError(f"pop({n}) from a buffer holding {self._size}")
        out = self.peek(n)
        self.drop(n)
        return out

    def peek(self, n: int) -> np.ndarray:
        first = min(n, self.capacity - self._start)
        if first == n:
            return self._data[..., self._start:self._start + n].copy()
        return np.concatenate([self._data[..., self._start:], self._data[..., :n - first]], axis=-1)

    def drop(self, n: int) -> None:
        n = min(n, self._size)
        self._start = (self._start + n) % self.capacity
        self._size -= n

    def _grow(self, needed: int) -> None:
        capacity = self.capacity
        while capacity < needed:
            capacity *= 2
        data = np.zeros(self.lead_shape + (capacity,), dtype=np.float32)
        data[..., :self._size] = self.peek(self._size)
        self._data, self._start, self.capacity = data, 0, capacity


class FrameRing:
    """A ring of ``capacity`` frames of ``channels`` float32 samples, (frames, channels)
    as sounddevice hands them over, addressed by absolute frame position.

    One thread writes, one thread reads, with no lock, no waiting and no buffer
    allocation on either side. Frame ``p`` of the stream lives in slot
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
