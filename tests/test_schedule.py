"""The learning-rate schedule and early stopping, as a small object of its own."""

import pytest

from handwrite.config import TrainConfig
from handwrite.errors import HandwriteError
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


def test_cosine_decays_to_zero_at_max_steps_and_never_halves():
    s = Schedule.of(TrainConfig(lr=1e-3, warmup_steps=10, lr_patience=1, max_steps=110, schedule="cosine"))
    assert s.lr_at(TrainState(step=4)) == pytest.approx(5e-4)  # warming up as before
    assert s.lr_at(TrainState(step=10)) == pytest.approx(1e-3)
    assert s.lr_at(TrainState(step=60)) == pytest.approx(5e-4)  # halfway down the half cosine
    assert s.lr_at(TrainState(step=110)) == pytest.approx(0.0)
    assert s.lr_at(TrainState(step=500)) == pytest.approx(0.0)
    state = TrainState()
    for epoch, cer in enumerate([0.5, 0.6, 0.7]):
        state.epoch = epoch
        s.end_epoch(state, cer)
    assert state.bad_epochs == 2 and state.lr_scale == 1.0  # the decay replaces plateau halving


def test_cosine_needs_a_step_count_and_unknown_schedules_are_refused():
    with pytest.raises(HandwriteError, match="max-steps"):
        TrainConfig(schedule="cosine")
    with pytest.raises(HandwriteError, match="unknown schedule 'linear'"):
        TrainConfig(schedule="linear", max_steps=10)
