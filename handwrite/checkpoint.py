"""Model files: written atomically, read without executing code.

A checkpoint is a plain dict of tensors, numbers, strings and lists saved with
``torch.save`` and read with ``torch.load(weights_only=True)``, whose unpickler
refuses anything that could run code. It holds everything needed to
transcribe (configs as dicts, the alphabet, the weights) and, in training
checkpoints, everything needed to resume.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import torch

from . import signals
from .atomic import atomic_write
from .codec import Alphabet
from .config import ModelConfig
from .errors import HandwriteError
from .model import CRNN

FORMAT = "handwrite-checkpoint"
VERSION = 1


def save(path: Path, model: CRNN, alphabet: Alphabet, **extra) -> None:
    state = {
        "format": FORMAT,
        "version": VERSION,
        "model_config": asdict(model.cfg),
        "alphabet": alphabet.chars,
        "model": model.state_dict(),
        **extra,
    }
    write_state(path, state)


def write_state(path: Path, state: dict) -> None:
    """``state`` saved to ``path`` atomically, with Ctrl-C and SIGTERM held until the file is whole."""
    with signals.held():
        atomic_write(path, lambda f: torch.save(state, f))


def load_state(path: Path, map_location="cpu") -> dict:
    path = Path(path)
    if not path.is_file():
        raise HandwriteError(f"{path}: model file not found")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception:  # torch raises many types for foreign, corrupt or code-carrying files
        raise HandwriteError(
            f"{path}: not a handwrite model (unreadable as a safe torch checkpoint: corrupt, truncated, "
            "another program's file, or one that would need to run code to load)"
        ) from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise HandwriteError(f"{path}: not a handwrite model (a checkpoint from another program?)")
    if state.get("version", 0) > VERSION:
        raise HandwriteError(f"{path}: model format version {state['version']} is newer than this handwrite supports")
    return state


def load_model(path: Path, map_location="cpu") -> tuple[CRNN, Alphabet, dict]:
    """The model in eval mode, its alphabet, and the whole checkpoint dict."""
    state = load_state(path, map_location)
    try:
        model = CRNN(ModelConfig(**state["model_config"]))
        model.load_state_dict(state["model"])
        alphabet = Alphabet(state["alphabet"])
    except (KeyError, TypeError, ValueError, RuntimeError, HandwriteError):
        raise HandwriteError(
            f"{path}: model does not match this version of handwrite (its weights or settings do not fit the network)"
        ) from None
    if model.cfg.num_classes != len(alphabet):  # len() counts the blank
        raise HandwriteError(
            f"{path}: inconsistent model: {model.cfg.num_classes} output classes for an alphabet of "
            f"{len(alphabet.chars)} characters + blank"
        )
    bad = [name for name, t in model.state_dict().items() if t.is_floating_point() and not torch.isfinite(t).all()]
    if bad:
        raise HandwriteError(f"{path}: broken model: weights that are not finite numbers in {', '.join(bad[:3])}")
    model.eval()
    return model, alphabet, state


def average(paths: Sequence[Path]) -> tuple[CRNN, Alphabet, dict]:
    """One model whose weights are the element-wise mean of several checkpoints of the same network,
    usually one run's last few epochs (checkpoint averaging, as in Izmailov et al. 2018's SWA and
    Vaswani et al. 2017): the mean lies nearer the middle of the region the epochs wander in, and is
    often better than any one of them. BatchNorm running statistics are averaged too; integer buffers
    come from the last file. Returns the model, its alphabet and the last file's training settings."""
    if len(paths) < 2:
        raise HandwriteError("averaging needs at least two model files")
    models, alphabet, last = [], None, {}
    for path in paths:
        model, chars, last = load_model(path)
        if models and (model.cfg != models[0].cfg or chars.chars != alphabet.chars):
            raise HandwriteError(
                f"{path}: cannot be averaged with {paths[0]}: a different network or alphabet "
                "(only checkpoints of one network, e.g. the epochs of one run, can be)"
            )
        models.append(model)
        alphabet = chars
    states = [m.state_dict() for m in models]
    weights = {}
    for name, tensor in states[-1].items():
        if tensor.is_floating_point():
            weights[name] = torch.stack([st[name].double() for st in states]).mean(0).to(tensor.dtype)
        else:
            weights[name] = tensor
    averaged = CRNN(models[-1].cfg)
    averaged.load_state_dict(weights)
    averaged.eval()
    return averaged, alphabet, {"train_config": last.get("train_config")}
