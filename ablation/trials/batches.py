"""Batches of a pack's epoch: each member's examples in its own order, one step or a chunk of steps at a time.

How many steps a call into the compiled training function takes (``steps_per_execution``: an
epoch, capped, or a divisor of the probes' sampling period) and, where the backend scans steps in
one program, how many steps' batches one item stacks (``chunk_cap``: at most CHUNK_BYTES of
inputs). Used by ``ablation.trials.pack``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import numpy as np

from ablation.trials.trial import Member

MAX_STEPS_PER_EXECUTION = 1000
CHUNK_BYTES = 32 * 2**20  # the inputs of one chunk of stacked steps, all members together


def steps_per_epoch(n: int, batch_size: int) -> int:
    """Steps of an epoch over ``n`` examples (the last batch may be smaller)."""
    return max(1, -(-n // max(1, min(batch_size, n))))


def steps_per_execution(train: Any, steps: int, every: int | None = None, cap: int | None = None) -> int:
    """Steps per call into the compiled function: ``train.steps_per_execution`` when set, else a
    whole epoch (capped at MAX_STEPS_PER_EXECUTION, and at ``cap``); probes that sample every N steps
    need a divisor of N."""
    spe = train.steps_per_execution or min(steps, MAX_STEPS_PER_EXECUTION, cap or MAX_STEPS_PER_EXECUTION)
    if every:
        spe = min(spe, every)
        while every % spe:
            spe -= 1
    return max(1, spe)


def chunk_cap(example_bytes: int, batch_size: int) -> int:
    """The most steps one chunk of stacked batches may hold: CHUNK_BYTES of inputs, all members."""
    return max(1, CHUNK_BYTES // max(1, example_bytes * batch_size))


class Batches(keras.utils.PyDataset):
    """Per-member batches of one epoch: member r's examples in a fresh permutation each epoch, drawn
    from ``(seed_r, epoch)``; Keras calls ``on_epoch_end`` between epochs.

    Without ``chunk`` an item is one step's batches. With ``chunk = k`` (a backend that scans steps in
    one compiled program) an item is up to ``k`` steps' batches stacked on a leading axis: the
    epoch's full batches in chunks of equal length (at most two lengths, each compiled once), and
    a last, smaller batch (when the batch size does not divide the training set) as a chunk of its
    own. The data order is the same either way.
    """

    def __init__(self, members: Sequence[Member], batch_size: int, steps: int, chunk: int | None = None,
                 every: int | None = None) -> None:
        super().__init__()
        self.members, self.batch_size, self.steps, self.chunk = members, batch_size, steps, chunk
        self.epoch = 0
        n = len(members[0].data.x_train)
        full = n // batch_size
        if chunk is None:
            self.spans = [(i, 1) for i in range(steps)]
        else:
            k = chunk  # with a sampling period the chunk divides it, so samples fall on chunk ends
            if full and not every:  # else the fewest chunks of at most `chunk` steps, of equal length
                k = -(-full // -(-full // chunk))
            self.spans = [(i, min(k, full - i)) for i in range(0, full, k)]
            if full < steps:
                self.spans.append((full, 1))
        self._draw()

    def _draw(self) -> None:
        self.perms = [np.random.default_rng([m.cfg.seed, self.epoch]).permutation(len(m.data.x_train))
                      for m in self.members]

    def __len__(self) -> int:
        return len(self.spans)

    def steps_done(self, item: int) -> int:
        """Steps of the epoch done once ``item`` has trained."""
        start, length = self.spans[item]
        return start + length

    def __getitem__(self, item: int) -> tuple[dict, dict]:
        start, length = self.spans[item]
        bs = self.batch_size
        xs, ys = {}, {}
        for r, (m, perm) in enumerate(zip(self.members, self.perms)):
            idx = perm[start * bs:(start + length) * bs]
            x, y = m.data.x_train[idx], m.data.y_train[idx]
            if self.chunk is not None:
                x, y = x.reshape(length, -1, *x.shape[1:]), y.reshape(length, -1, *y.shape[1:])
            xs[f"x{r}"], ys[f"m{r}"] = x, y
        return xs, ys

    def on_epoch_end(self) -> None:
        self.epoch += 1
        self._draw()
