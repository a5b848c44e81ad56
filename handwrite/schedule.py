"""The learning-rate schedule and early stopping of a training run.

Linear warm-up over ``warmup_steps``; then the rate is halved whenever validation
CER has not improved for ``lr_patience`` epochs, and training stops after
``patience`` such epochs. Unlike a cosine or one-cycle schedule this needs no
total step count, so it suits runs bounded by wall-clock time. Only whole epochs
move it, so stopping and resuming mid-epoch changes nothing. Its state is the
run's :class:`TrainState`, saved in ``last.pt``.
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

    @classmethod
    def of(cls, cfg: TrainConfig) -> Schedule:
        return cls(cfg.lr, cfg.warmup_steps, cfg.lr_patience, cfg.patience)

    def lr_at(self, state: TrainState) -> float:
        """The learning rate for the step about to be taken."""
        return self.lr * state.lr_scale * min(1.0, (state.step + 1) / self.warmup_steps)

    def end_epoch(self, state: TrainState, cer: float) -> None:
        """Take a whole epoch's validation CER into account."""
        if cer < state.best_cer:
            state.best_cer, state.best_epoch, state.bad_epochs = cer, state.epoch, 0
        else:
            state.bad_epochs += 1
            if state.bad_epochs % self.lr_patience == 0:
                state.lr_scale *= 0.5

    def should_stop(self, state: TrainState) -> bool:
        return state.bad_epochs >= self.patience
