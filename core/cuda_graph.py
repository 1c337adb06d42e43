"""A training step captured once in a CUDA graph and replayed for every batch of the same size.

Why: the teaching models are small, so on a GPU an eager step is a few hundred tiny kernel
launches from Python and the GPU waits on the launches, not on the arithmetic. A class of thirty
training at once makes it worse (the launches of all jobs share one Python interpreter). Replaying
a captured graph is one launch per step. Measured on an H200 (shared/perf/gpu_limit.py, conv-small
on MNIST): one job 163,000 img/s captured vs 34,000 eager; thirty jobs 473,000 vs 26,000 in total.

What is captured: gathering the batch from the uint8 split already on the device (by an index
buffer), the uint8 -> float conversion, the denoising noise, the forward pass (dropout and the
VAE's sampling draw fresh random numbers on every replay: the generators are registered with the
graph), the loss, the backward pass, the optimiser step, and the bookkeeping: each batch's loss
is written into a small on-device log and the epoch sums are accumulated on the device, so the
host reads losses only when it flushes the log (at most every FLUSH_SECONDS, see core.train).

The caller (core.train.train) decides when to capture (after a short eager warm-up that creates
the optimiser state) and runs any batch of another size eagerly.
"""
from __future__ import annotations

import threading
import time
from collections import deque
from typing import Callable

import torch

# Batches of the first epoch run eagerly before capture: they create the optimiser's state
# (Adam's moments, SGD's momentum buffers) and let cuDNN pick its kernels, as capture requires.
WARMUP_STEPS = 3
# The on-device loss log holds this many batches; the host flushes it before it fills.
LOG_CAPACITY = 512
# A NaN/inf loss is seen by the host within this many replays: each replay copies a one-byte
# "non-finite loss so far" flag into pinned host memory behind an event; the host reads the flags
# of replays the GPU has finished without waiting, and waits only if it runs this far ahead.
NONFINITE_WITHIN = 8
# Only one capture at a time in this process: captures are rare (one per job) and short, and one
# at a time keeps the allocator's and the random generators' capture bookkeeping sound (the
# default CUDA generator's capture state is shared by every graph that registers it).
_CAPTURE_LOCK = threading.Lock()
# While one job captures, jobs that are already replaying pause this long before each replay.
# Capturing is Python work under the GIL; with thirty threads replaying, the capturing thread
# gets a thirtieth of the interpreter, and every job still waiting to capture waits behind it.
# Letting the capture through first helps a class start together (not measured on its own: the
# GPU runs that included it differed in machine too; BENCHMARKS.md has the classroom figures).
CAPTURE_COURTESY_S = 0.0005

# The step computes (loss, reconstruction part, KL part) from (float input, labels, clean target).
LossFn = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor, torch.Tensor]]


class GraphedStep:
    """One training step of a fixed batch size, captured on `stream` and replayed by `replay(idx)`.

    `step_fn(idx)` must do the whole step for the index tensor `idx` (the batch's positions in
    the split on the device) — forward, backward, optimiser step — and return the detached
    (loss, recon, kl) scalars. It is called once, under capture, with the graph's index buffer.
    """

    def __init__(self, step_fn: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor, torch.Tensor]],
                 optimizer: torch.optim.Optimizer, batch_size: int, device: torch.device,
                 stream: torch.cuda.Stream, generators: tuple[torch.Generator, ...] = ()):
        self.batch_size = batch_size
        self.static_idx = torch.zeros(batch_size, dtype=torch.long, device=device)
        self.log = torch.zeros(LOG_CAPACITY, dtype=torch.float32, device=device)
        self.cursor = torch.zeros(1, dtype=torch.long, device=device)
        self.sums = torch.zeros(3, dtype=torch.float64, device=device)  # loss, recon, kl × images
        self.nonfinite = torch.zeros(1, dtype=torch.bool, device=device)  # any non-finite loss so far
        self.logged = 0  # replays since the last read_log(), known on the host
        self.stream = stream
        self._flags = torch.zeros(NONFINITE_WITHIN, dtype=torch.bool, pin_memory=True)
        self._events = [torch.cuda.Event() for _ in range(NONFINITE_WITHIN)]
        self._in_flight: deque[int] = deque()  # ring slots whose copy may not have landed yet
        self._replays = 0
        self.saw_nonfinite = False
        self.graph = torch.cuda.CUDAGraph()
        for generator in generators:  # custom generators must be registered to advance per replay
            self.graph.register_generator_state(generator)
        # Gradients set to None before capture: the captured backward then allocates them in the
        # graph's own memory and every replay overwrites them (no accumulation across replays).
        optimizer.zero_grad(set_to_none=True)
        # capture_begin/capture_end rather than torch.cuda.graph(): that context manager
        # synchronises the whole device and empties the allocator's cache first, which with a
        # class of jobs capturing one after another stalls every other job each time. Only this
        # job's stream has to be idle.
        stream.synchronize()
        with _CAPTURE_LOCK, torch.cuda.stream(stream):
            # thread_local: other jobs' threads may allocate or synchronise while this one captures.
            self.graph.capture_begin(capture_error_mode="thread_local")
            try:
                loss, recon, kl = step_fn(self.static_idx)
                self.log.index_copy_(0, self.cursor, loss.float().view(1))
                self.cursor.add_(1)
                self.sums.add_(torch.stack([loss, recon, kl]).double() * batch_size)
                self.nonfinite.logical_or_(~torch.isfinite(loss))
            finally:
                self.graph.capture_end()  # also ends a failed capture, so the stream works again

    def replay(self, idx: torch.Tensor) -> bool:
        """Train one batch; True once a non-finite loss has been seen (then read_log() says where)."""
        if _CAPTURE_LOCK.locked():  # another job is capturing: let it have the interpreter
            time.sleep(CAPTURE_COURTESY_S)
        self.static_idx.copy_(idx, non_blocking=True)
        self.graph.replay()
        self.logged += 1
        slot = self._replays % NONFINITE_WITHIN
        self._replays += 1
        if len(self._in_flight) == NONFINITE_WITHIN:  # the oldest slot is reused: its copy must have landed
            oldest = self._in_flight.popleft()
            self._events[oldest].synchronize()
            self.saw_nonfinite |= bool(self._flags[oldest])
        self._flags[slot : slot + 1].copy_(self.nonfinite, non_blocking=True)
        self._events[slot].record(self.stream)
        self._in_flight.append(slot)
        while self._in_flight and self._events[self._in_flight[0]].query():  # landed: read, no wait
            self.saw_nonfinite |= bool(self._flags[self._in_flight.popleft()])
        return self.saw_nonfinite

    @property
    def log_full(self) -> bool:
        return self.logged >= LOG_CAPACITY

    def read_log(self) -> list[float]:
        """The losses of the replays since the last read, in order (one device sync); resets the log."""
        if self.logged == 0:
            return []
        values = self.log[: self.logged].tolist()
        self.cursor.zero_()
        self.logged = 0
        return values

    def take_sums(self) -> torch.Tensor:
        """The (loss, recon, kl) × images sums of the replays since the last take, on the device."""
        sums = self.sums.clone()
        self.sums.zero_()
        return sums
