"""The learning-rate schedule and early stopping, as a small object of its own."""

import pytest

from handwrite.config import TrainConfig
from handwrite.schedule import Schedule, TrainState


def test_warm_up_is_linear_then_flat():
    s = Schedule(lr=1e-3, warmup_steps=4, lr_patience=2, patience=5)
    rates = []
    for step in range(6):
        rates.append(s.lr_at(TrainState(step=step)))
    assert rates == pytest.approx([2.5e-4, 5e-4, 7.5e-4, 1e-3, 1e-3, 1e-3])


def test_plateaus_halve_the_rate_and_patience_stops():
    s = Schedule.of(TrainConfig(lr=1e-3, warmup_steps=1, lr_patience=2, patience=5))
    state = TrainState()
    history = []
    for epoch, cer in enumerate([0.5, 0.4, 0.45, 0.41, 0.42, 0.39, 0.40, 0.40, 0.40, 0.40, 0.40]):
        state.epoch = epoch
        s.end_epoch(state, cer)
        history.append((state.lr_scale, state.bad_epochs, s.should_stop(state)))
    assert state.best_cer == 0.39 and state.best_epoch == 5
    # two epochs without improvement halve the rate; an improvement resets the count, not the rate
    assert [h[0] for h in history] == [1, 1, 1, 0.5, 0.5, 0.5, 0.5, 0.25, 0.25, 0.125, 0.125]
    assert [h[2] for h in history].index(True) == 10  # the fifth epoch in a row without improvement
    assert s.lr_at(TrainState(step=100, lr_scale=state.lr_scale)) == pytest.approx(1e-3 * 0.125)
