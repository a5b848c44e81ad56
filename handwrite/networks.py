"""The network behind a Recognizer: a PyTorch model or an ONNX export, behind one numpy interface.

Recognition needs only ``run(images, widths) -> (log_probs, lengths)`` on numpy arrays
(images (N, 1, H, W) float32 in [0, 1]; log_probs (T, N, C); lengths (N,)) and ``cfg``, the
model's :class:`~handwrite.config.ModelConfig`. Keeping torch inside :class:`TorchNetwork`
lets an ONNX model transcribe without importing torch at all, which costs more than a second.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .codec import Alphabet
from .config import ModelConfig
from .errors import HandwriteError


class TorchNetwork:
    """A :class:`~handwrite.model.CRNN` on a torch device (also the model being trained, for validation)."""

    def __init__(self, model, device="cpu"):
        import torch

        self.model, self.cfg, self.device = model, model.cfg, torch.device(device)

    def run(self, images: np.ndarray, widths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        import torch

        self.model.eval()
        with torch.inference_mode():
            log_probs, lengths = self.model(
                torch.from_numpy(images).to(self.device), torch.from_numpy(widths).to(self.device)
            )
        return log_probs.float().cpu().numpy(), lengths.cpu().numpy()


class OnnxNetwork:
    """An export from ``handwrite export``, run by onnxruntime; its shape and alphabet come from
    the export's ``<file>.json`` description."""

    def __init__(self, path: Path, threads: int = 1):
        path = Path(path)
        meta_path = path.with_name(path.name + ".json")
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8-sig"))
            self.cfg = ModelConfig(**meta["model_config"])
            self.alphabet = Alphabet(meta["alphabet"])
        except (OSError, ValueError, KeyError, TypeError, HandwriteError) as e:
            raise HandwriteError(
                f"{meta_path}: missing or unreadable export description ({e}); re-export the model"
            ) from None
        try:
            import onnxruntime as ort
        except ImportError:
            raise HandwriteError("running ONNX models needs onnxruntime: pip install onnxruntime") from None
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime reports bad files with its own exception types
            raise HandwriteError(f"{path}: not a loadable ONNX model ({type(e).__name__})") from None

    def run(self, images: np.ndarray, widths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        log_probs, lengths = self.session.run(
            None, {"images": images.astype(np.float32), "widths": widths.astype(np.int64)}
        )
        return log_probs, lengths
