import signal
from pathlib import Path

import pytest
import torch

FIXTURES = Path(__file__).parent / "fixtures"
IAM_MINI = FIXTURES / "iam-hooker-mini"
COPISTE_MINI = FIXTURES / "copiste-mini"
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

# One thread: the tests run beside other work on small machines, where torch's
# spinning OpenMP threads slow everything down.
torch.set_num_threads(1)


def needs_shared(name: str):
    """Skip a test when the full development set ../shared/data/<name> is not present."""
    return pytest.mark.skipif(
        not (SHARED_DATA / name).is_dir(),
        reason=f"full data set {SHARED_DATA / name} not present (only on development machines)",
    )


@pytest.fixture(autouse=True)
def ctrl_c_as_at_a_terminal():
    """Each test meets Ctrl-C as a command typed at a terminal does. A suite started in the background
    (`nohup`, `&` in a script) inherits SIGINT ignored, and handwrite leaves an ignored signal ignored
    (handwrite.signals): the tests of what Ctrl-C does, in this process or in the commands it starts
    (which inherit an ignored signal), would then see nothing happen."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


# A model small enough to memorise a handful of lines in seconds.
TINY = dict(height=32, channels=[16, 32, 48], width_pools=2, lstm_hidden=64, lstm_layers=1, dropout=0.0)


@pytest.fixture(scope="session")
def trained(tmp_path_factory):
    """A tiny model trained on the 6 'ok' training lines of the IAM fixture until it reads them."""
    from handwrite.config import ModelConfig, TrainConfig
    from handwrite.datasets import load_dataset
    from handwrite.training import train

    out = tmp_path_factory.mktemp("run")
    records = load_dataset(IAM_MINI, split="train")
    cfg = TrainConfig(
        epochs=150, batch_size=3, lr=3e-3, warmup_steps=10, augment=False, workers=0, patience=1000, lr_patience=1000
    )
    result = train(records, records, out, ModelConfig(**TINY), cfg, show_progress=False, log=lambda m: None)
    return out, result
