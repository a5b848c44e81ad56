"""handwrite: offline handwritten text-line recognition (CNN + BiLSTM + CTC)."""

import os

# torch's OpenMP threads spin while they wait; on a shared small machine that
# burns the cores other work needs (2 busy-waiting threads were seen 10-16x
# slower than 1). Passive waiting must be chosen before torch is first imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# oneDNN caches compiled kernels per input shape, and every batch width is a new
# shape: with its default of 1024 entries, training RSS grew to 2.2 GiB in 300
# steps; 64 entries gave 1.5 GiB at the same speed (scripts/bench.py train). With
# widths padded to 32 columns, 16 entries against 64 (2026-11-29, 5 alternated pairs,
# bench.py train on iam-hooker, 60 steps, bf16): peak 867 vs 919 MiB (medians), speed
# ratio 1.02 (0.83-1.25); the .pt model's recognition: 686 vs 704 MiB, greedy ratio
# 1.06 at batch 16 (0.90-1.09). Rebuilding a kernel costs less than keeping them all.
os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "16")

__version__ = "0.1.0"

# The public Python API (what the CLI calls too). Imported on first use, so that `import handwrite`
# and the CLI's start stay fast: torch loads only when a model does.
_API = {
    "load": "bundle",
    "default_model": "bundle",
    "Recognizer": "recognize",
    "Transcription": "recognize",
    "Glyph": "recognize",
    "transcribe_page": "recognize",
    "line_document": "recognize",
    "evaluate": "metrics",
    "Evaluation": "metrics",
    "ErrorCounts": "metrics",
    "cer": "metrics",
    "train": "training",
    "adapt": "training",
    "pseudo_label": "pseudolabels",
    "unlabelled_lines": "pseudolabels",
    "load_dataset": "datasets",
    "LineRecord": "datasets",
    "ModelConfig": "config",
    "TrainConfig": "config",
    "DecoderSpec": "config",
    "HandwriteError": "errors",
}
__all__ = sorted(_API) + ["__version__"]


def __getattr__(name: str):
    if name in _API:
        import importlib

        return getattr(importlib.import_module(f".{_API[name]}", __name__), name)
    raise AttributeError(f"module 'handwrite' has no attribute {name!r}")
