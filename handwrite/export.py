"""Deployment copies of a model: TorchScript or ONNX, checked against PyTorch on export.

The exported network has the same inputs and outputs as ``CRNN.forward``:

* ``images``  float32 (N, 1, H, W): lines scaled to the model's height H, ink high
  in [0, 1] (``preprocess.load_line(path, H) / 255``), padded on the right with 0;
* ``widths``  int64 (N,): each line's width before padding;
* outputs ``log_probs`` float32 (T, N, C), CTC log-probabilities with blank = class 0,
  and ``lengths`` int64 (N,), the valid frames of each line.

A JSON file beside the export (``<file>.json``) holds what a consumer needs to
prepare inputs and decode outputs: alphabet, height, and this description.
"""

from __future__ import annotations

import io
import json
import logging
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from .atomic import atomic_write
from .checkpoint import load_model
from .errors import HandwriteError
from .networks import OnnxNetwork

FORMATS = ("onnx", "torchscript")
SUFFIX = {"onnx": ".onnx", "torchscript": ".ts.pt"}
# float32 round-off between runtimes; a real disagreement (wrong weights, a baked-in shape) is orders larger.
TOLERANCE = 1e-3


@dataclass
class ExportReport:
    path: str
    format: str
    bytes: int
    max_abs_diff: float  # largest |log-prob| difference from PyTorch on the check batch
    quantized: bool


def export(
    model_path: Path,
    out: Path | None = None,
    fmt: str = "onnx",
    quantize: bool = False,
    check_images: torch.Tensor | None = None,
    check_widths: torch.Tensor | None = None,
) -> ExportReport:
    """Write ``model_path`` as ``fmt`` to ``out`` and compare its outputs with PyTorch's.

    ``quantize`` (ONNX only) stores LSTM and linear weights as int8 with onnxruntime's
    dynamic quantization; its difference from float is reported, not held to TOLERANCE."""
    if fmt not in FORMATS:
        raise HandwriteError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if quantize and fmt != "onnx":
        raise HandwriteError("quantize is available for the onnx format only")
    model_path = Path(model_path)
    out = Path(out) if out else model_path.with_suffix(".int8.onnx" if quantize else SUFFIX[fmt])
    model, alphabet, state = load_model(model_path)
    model = model.float().eval()
    if check_images is None:
        check_images, check_widths = _check_batch(model.cfg.height)
    with torch.inference_mode():
        reference, _ = model(check_images, check_widths)

    if fmt == "torchscript":
        with warnings.catch_warnings():
            # torch 2.14 marks TorchScript deprecated; it is still what libtorch (C++) deployments load.
            warnings.simplefilter("ignore", FutureWarning)
            scripted = torch.jit.script(model)
            atomic_write(out, lambda f: torch.jit.save(scripted, f))
    else:
        data = _onnx_bytes(model, check_images, check_widths)
        if quantize:
            data = _quantize(data)
        atomic_write(out, lambda f: f.write(data))
    meta = {
        "format": fmt,
        "source": model_path.name,
        "alphabet": alphabet.chars,
        "blank": 0,
        "height": model.cfg.height,
        "model_config": asdict(model.cfg),
        "quantized_int8": quantize,
        "inputs": {"images": "float32 (N,1,H,W), ink high in [0,1], right-padded with 0", "widths": "int64 (N,)"},
        "outputs": {"log_probs": "float32 (T,N,C), CTC, blank=0", "lengths": "int64 (N,) valid frames"},
    }
    meta_bytes = (json.dumps(meta, ensure_ascii=False, indent=1) + "\n").encode("utf-8")
    atomic_write(out.with_name(out.name + ".json"), lambda f: f.write(meta_bytes))
    if fmt == "torchscript":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            got = torch.jit.load(str(out))(check_images, check_widths)[0].detach().numpy()
    else:
        got = OnnxNetwork(out).run(check_images.numpy(), check_widths.numpy())[0]
    diff = float(np.abs(got - reference.numpy()).max())
    if not quantize and diff > TOLERANCE:
        for p in (out, out.with_name(out.name + ".json")):
            p.unlink(missing_ok=True)
        raise HandwriteError(
            f"{out}: exported model disagrees with PyTorch (max |diff| {diff:.2e} > {TOLERANCE}); not kept"
        )
    return ExportReport(str(out), fmt, out.stat().st_size, diff, quantize)


def _check_batch(height: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Two lines of different widths: the export must handle any batch size and width, and padding."""
    g = torch.Generator().manual_seed(0)
    images = torch.rand(2, 1, height, 8 * height, generator=g)
    widths = torch.tensor([8 * height, 5 * height])
    images[1, :, :, widths[1] :] = 0
    return images, widths


def _onnx_bytes(model, images, widths) -> bytes:
    buf = io.BytesIO()
    try:
        with warnings.catch_warnings():
            # It warns that an LSTM exported at one batch size may fail at another; the export
            # check and the tests run other batch sizes and widths.
            warnings.filterwarnings("ignore", message="Exporting a model to ONNX with a batch_size other than 1")
            # Tracing notes shape checks inside nn.LSTM that it freezes; they hold for every input.
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            # The TorchScript-based exporter, deprecated in torch 2.14 but the one that works here:
            # the dynamo exporter (dynamo=True) took 33 s and froze the LSTM's sequence length,
            # so the model failed on any other line width in onnxruntime (tried with torch 2.14.1).
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.onnx.export(
                model,
                (images, widths),
                buf,
                input_names=["images", "widths"],
                output_names=["log_probs", "lengths"],
                dynamic_axes={
                    "images": {0: "batch", 3: "width"},
                    "widths": {0: "batch"},
                    "log_probs": {0: "frames", 1: "batch"},
                    "lengths": {0: "batch"},
                },
                opset_version=17,
                dynamo=False,
            )
    except ImportError as e:
        raise HandwriteError(f"ONNX export needs the onnx package: pip install 'handwrite[export]' ({e})") from None
    return buf.getvalue()


def _quantize(data: bytes) -> bytes:
    import tempfile

    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "float.onnx", Path(tmp) / "int8.onnx"
        src.write_bytes(data)
        # It logs advice about shape pre-processing meant for image models with static shapes.
        root = logging.getLogger()
        level = root.level
        root.setLevel(logging.ERROR)
        try:
            quantize_dynamic(src, dst, weight_type=QuantType.QInt8, op_types_to_quantize=["LSTM", "MatMul", "Gemm"])
        finally:
            root.setLevel(level)
        return dst.read_bytes()
