"""handwrite.optimizer.AdamW: torch.optim.AdamW's updates and state layout, without its imports."""

import subprocess
import sys

import conftest
import pytest
import torch

from handwrite.config import ModelConfig
from handwrite.errors import HandwriteError
from handwrite.model import CRNN
from handwrite.optimizer import AdamW

TINY = ModelConfig(**conftest.TINY, num_classes=7)


def _groups(model):
    params = list(model.parameters())
    return [
        {"params": [p for p in params if p.ndim > 1], "weight_decay": 0.05},
        {"params": [p for p in params if p.ndim <= 1], "weight_decay": 0.0},
    ]


def _steps(model, optimizer, n, seed):
    torch.manual_seed(seed)
    for i in range(n):
        for g in optimizer.param_groups:
            g["lr"] = 1e-2 / (i + 1)  # training sets the rate before every step
        images = torch.randn(2, 1, 32, 40)
        log_probs, _ = model(images, torch.tensor([40, 33]))
        optimizer.zero_grad()
        (log_probs.exp()[..., 1:].sum() * (i + 1)).backward()
        optimizer.step()


def _twins():
    torch.manual_seed(0)
    a = CRNN(TINY)
    b = CRNN(TINY)
    b.load_state_dict(a.state_dict())
    return a.train(), b.train()


def test_updates_equal_torch_adamw_and_states_load_both_ways():
    ours_model, torch_model = _twins()
    ours = AdamW(_groups(ours_model), lr=1e-2)
    theirs = torch.optim.AdamW(_groups(torch_model), lr=1e-2)
    _steps(ours_model, ours, 4, seed=1)
    _steps(torch_model, theirs, 4, seed=1)
    for (name, x), y in zip(ours_model.state_dict().items(), torch_model.state_dict().values()):
        assert torch.allclose(x, y, rtol=0, atol=1e-7), name

    # Each optimizer picks up the other's state (old checkpoints hold torch's) and goes on identically.
    swapped_ours = AdamW(_groups(torch_model), lr=1e-2)
    swapped_ours.load_state_dict(theirs.state_dict())
    swapped_theirs = torch.optim.AdamW(_groups(ours_model), lr=1e-2)
    swapped_theirs.load_state_dict(ours.state_dict())
    _steps(torch_model, swapped_ours, 3, seed=2)
    _steps(ours_model, swapped_theirs, 3, seed=2)
    for (name, x), y in zip(ours_model.state_dict().items(), torch_model.state_dict().values()):
        assert torch.allclose(x, y, rtol=0, atol=1e-6), name
    assert swapped_ours.state_dict()["param_groups"][0]["betas"] == (0.9, 0.999)


def test_a_state_for_other_parameters_is_refused():
    model, _ = _twins()
    saved = AdamW(_groups(model), lr=1e-3).state_dict()
    saved["param_groups"] = saved["param_groups"][:1]
    with pytest.raises(HandwriteError, match="other parameters"):
        AdamW(_groups(model), lr=1e-3).load_state_dict(saved)


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_training_steps_do_not_import_the_compiler(precision):
    """What the optimizer is for: torch.optim would import torch._dynamo (156 MB resident here)."""
    code = (
        "import sys, torch\n"
        "from handwrite.config import ModelConfig, TrainConfig\n"
        "from handwrite.model import CRNN\n"
        "from handwrite.training import make_trainee, train_step\n"
        f"cfg = TrainConfig(precision={precision!r}, shortcut_weight=0.1)\n"
        f"net, opt = make_trainee(CRNN(ModelConfig(**{TINY.__dict__!r})), cfg)\n"
        "batch = (torch.rand(2, 1, 32, 40), torch.tensor([40, 30]), torch.tensor([1, 2, 3]), torch.tensor([2, 1]), None)\n"
        "for _ in range(2):\n"
        "    train_step(net, batch, opt, torch.nn.CTCLoss(zero_infinity=True), 1e-3, cfg, torch.device('cpu'))\n"
        "print('torch._dynamo' in sys.modules, len(opt.state))\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert run.stdout.split() == ["False", str(sum(1 for _ in CRNN(TINY).parameters()) + 2)], run.stdout + run.stderr
