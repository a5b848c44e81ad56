"""The learning-rate schedule and early stopping of a training run.

Linear warm-up over ``warmup_steps``; then, by default ("plateau"), the rate is
halved whenever validation CER has not improved for ``lr_patience`` epochs. That
needs no total step count, so it suits runs bounded by wall-clock time. "cosine"
instead lowers the rate along a half cosine from its peak to zero at ``max_steps``:
annealing, for a last stretch of training whose length is known. Either way
training stops after ``patience`` epochs without a better validation CER. Only
whole epochs and the step count move it, so stopping and resuming mid-epoch
changes nothing. Its state is the run's :class:`TrainState`, saved in ``last.pt``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .config import TrainConfig


@dataclass
class TrainState:
    """Where a run stands; saved in last.pt so that --resume carries on exactly."""

    epoch: int = 0
    step_in_epoch: int = 0
    step: int = 0
    lr_scale: float = 1.0
    best_cer: float = math.inf  # best CER at an epoch end: drives the schedule and early stopping
    best_epoch: int = -1
    bad_epochs: int = 0
    best_saved_cer: float = math.inf  # CER of best.pt, which a validation at a mid-epoch stop may also write
    elapsed: float = 0.0  # seconds of training so far, across resumes


@dataclass
class Schedule:
    lr: float
    warmup_steps: int
    lr_patience: int
    patience: int
    cosine_steps: int | None = None  # the step at which a cosine decay reaches zero; None: halve on plateaus

    @classmethod
    def of(cls, cfg: TrainConfig) -> Schedule:
        cosine = cfg.max_steps if cfg.schedule == "cosine" else None
        return cls(cfg.lr, cfg.warmup_steps, cfg.lr_patience, cfg.patience, cosine)

    def lr_at(self, state: TrainState) -> float:
        """The learning rate for the step about to be taken."""
        warm = min(1.0, (state.step + 1) / self.warmup_steps)
        if self.cosine_steps is None:
            return self.lr * state.lr_scale * warm
        span = max(1, self.cosine_steps - self.warmup_steps)
        done = min(1.0, max(0, state.step - self.warmup_steps) / span)
        return self.lr * warm * 0.5 * (1 + math.cos(math.pi * done))

    def end_epoch(self, state: TrainState, cer: float) -> None:
        """Take a whole epoch's validation CER into account."""
        if cer < state.best_cer:
            state.best_cer, state.best_epoch, state.bad_epochs = cer, state.epoch, 0
        else:
            state.bad_epochs += 1
            if self.cosine_steps is None and state.bad_epochs % self.lr_patience == 0:
                state.lr_scale *= 0.5

    def should_stop(self, state: TrainState) -> bool:
        return state.bad_epochs >= self.patience
