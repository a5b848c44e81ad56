"""A model bundle: what a model is, and where it is found.

* The network: a ``.pt`` checkpoint (run by PyTorch) or an ``.onnx`` export from
  ``handwrite export`` (run by onnxruntime). Its shape and alphabet travel inside the
  checkpoint, or in the export's ``<file>.json`` description.
* Its decoding settings: ``<model>.decoding.json`` beside it (written by ``lm tune``),
  naming the LM and lexicon to use, relative to itself. They apply unless overridden.
* The shipped default: ``models/default/model.onnx`` (the ONNX export of ``model.pt``,
  which stays for fine-tuning with ``--init``), installed with the package as
  ``handwrite.models``, so that a wheel finds it as well as a source checkout.

:func:`load` puts these together into a :class:`~handwrite.recognize.Recognizer`; the
CLI's ``eval`` and ``transcribe`` call it too, so Python and the command line read the
same model the same way.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from dataclasses import replace
from importlib import resources
from pathlib import Path

from .config import INFERENCE_BATCH, DecoderSpec
from .errors import HandwriteError, check_number


def default_model() -> Path:
    """The shipped model's file: its ONNX export, which runs without torch (start-up in under a
    second), else the PyTorch checkpoint it was exported from. Either may be absent from a
    stripped-down install."""
    folder = Path(str(resources.files("handwrite.models") / "default"))
    onnx = folder / "model.onnx"
    if onnx.is_file() and importlib.util.find_spec("onnxruntime") is not None:
        return onnx
    return folder / "model.pt"


def model_path(model: str | Path | None) -> Path:
    """``model`` as a path, or the shipped default when None; an error if that is not installed."""
    if model is not None:
        return Path(model)
    path = default_model()
    if not path.is_file():
        raise HandwriteError(f"no model given and no default model installed at {path}; give a model file")
    return path


def decoding(
    model: str | Path,
    decoder: str | None = None,
    lm: str | Path | Sequence[str | Path] | None = None,
    lexicon: str | Path | Sequence[str | Path] | None = None,
    beam: int | None = None,
    lm_weight: float | None = None,
    insertion_bonus: float | None = None,
    oov_penalty: float | None = None,
    max_density: float | None = None,
    min_ink_height: float | None = None,
    max_slope: float | None = None,
    margin: float | None = None,
    read_as: dict[str, str] | None = None,
) -> DecoderSpec:
    """The decoding a model gets: the settings saved beside it (else greedy), with every argument
    that is not None put over them. An LM or lexicon given without a decoder implies beam search;
    several LMs (one per language, say) are chosen between per document (:class:`~handwrite.decoding.LMChoice`),
    and so may several word lists, one per LM. Saved weights of one per LM, when another number of LMs
    is given, become their mean; saved word lists of one per LM are then dropped."""
    from .decoding import load_spec

    def names(files) -> str | list[str] | None:
        return (
            ([str(f) for f in files] or None) if isinstance(files, (list, tuple)) else (str(files) if files else None)
        )

    spec = load_spec(Path(model)) or DecoderSpec()
    lms, lexicons = names(lm), names(lexicon)
    if lms is not None:
        count = len(DecoderSpec(lm=lms).lm_files)
        saved = {"lm_weight": spec.lm_weight, "insertion_bonus": spec.insertion_bonus}
        spec = replace(
            spec, **{k: sum(v) / len(v) for k, v in saved.items() if isinstance(v, list) and len(v) != count}
        )
        if len(spec.lexicon_files) not in (1, count):
            spec = replace(spec, lexicon=None)
    given = {
        "lm": lms,
        "lexicon": lexicons,
        "beam": beam,
        "lm_weight": lm_weight,
        "insertion_bonus": insertion_bonus,
        "oov_penalty": oov_penalty,
        "max_density": max_density,
        "min_ink_height": min_ink_height,
        "max_slope": max_slope,
        "margin": margin,
        "read_as": read_as,  # {} reads every character as written
    }
    spec = replace(spec, **{k: v for k, v in given.items() if v is not None})
    if decoder is not None:
        spec = replace(spec, decoder=decoder)
    elif lm or lexicon:
        spec = replace(spec, decoder="beam")
    return spec


def network(model: str | Path, device: str = "cpu", threads: int = 1):
    """The network (:mod:`handwrite.networks`) and its alphabet, from a ``.pt`` checkpoint (PyTorch,
    ``threads`` intra-op threads) or an ``.onnx`` export (onnxruntime; torch is not imported)."""
    path = Path(model)
    if path.suffix == ".onnx":
        from .networks import OnnxNetwork

        if device not in ("cpu", "auto"):
            raise HandwriteError(f"{path}: ONNX models run on the CPU here; use device 'cpu'")
        net = OnnxNetwork(path, threads)
        return net, net.alphabet
    import torch

    from .checkpoint import load_model
    from .devices import resolve_device
    from .networks import TorchNetwork

    torch.set_num_threads(threads)
    dev = resolve_device(device)
    model, alphabet, _ = load_model(path, map_location=str(dev))
    return TorchNetwork(model.to(dev), dev), alphabet


def load(
    model: str | Path | None = None,
    *,
    device: str = "cpu",
    threads: int = 1,
    batch_size: int = INFERENCE_BATCH,
    workers: int = 1,
    spec: DecoderSpec | None = None,
    **overrides,
):
    """A :class:`~handwrite.recognize.Recognizer` for ``model`` (default: the shipped one), with the
    decoding saved beside it and its LM applied. ``overrides`` are :func:`decoding`'s arguments
    (``decoder="greedy"``, ``lm_weight=1.0``, ...); ``spec`` replaces the saved settings outright.
    ``threads``: torch's or onnxruntime's intra-op threads (1 is fastest on a small or shared machine).

    >>> import handwrite
    >>> reader = handwrite.load()                     # doctest: +SKIP
    >>> reader.read("line.png").text                  # doctest: +SKIP
    """
    from .recognize import Recognizer, check_settings

    check_settings(batch_size, workers)  # before the model loads: a bad number fails fast
    check_number("threads", threads, 1, 1024, integer=True)
    path = model_path(model)
    spec = spec if spec is not None else decoding(path, **overrides)
    net, alphabet = network(path, device, threads)
    return Recognizer(net, alphabet, batch_size, decoder=spec, workers=workers)
