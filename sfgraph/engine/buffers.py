"""Streaming buffers between nodes."""
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
