"""Throughput and memory benchmarks; prints one JSON record.

    python scripts/bench.py train DATA [--split train] [--steps 60] [--batch-size 8]
    python scripts/bench.py infer MODEL DATA [--split test] [--lines 200] [--lm LM] [--lexicon FILE]
    python scripts/bench.py read DATA [--split NAME] [--height 64]

MODEL may be a .pt checkpoint or an .onnx export (`handwrite export`).

``train`` times optimizer steps (handwrite.training.train_step: forward, CTC, backward,
clipping, AdamW) on real batches after a warm-up, with augmentation running in one DataLoader worker
as in `handwrite train`. ``infer`` times transcription of already-decoded
line images (reading and scaling the files included) at batch 1 and batch 16,
greedy and, with --lm, beam search, and the model's own saved decoding (``saved``: its
LMs, word lists and re-reading of dense lines, as eval and transcribe use it), plus the model load time. ``read`` times reading
a dataset and decoding every line as training does (for page files: parsing the XML,
decoding each page once, cutting and masking every line). Peak RSS is the whole process's (ru_maxrss), so run
each mode in its own process. Uses only the standard library and torch.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

import handwrite  # noqa: E402, F401  (sets OMP_WAIT_POLICY before torch loads)
from handwrite.batching import LineDataset, WidthBatchSampler, collate  # noqa: E402
from handwrite.bundle import decoding, load  # noqa: E402
from handwrite.codec import Alphabet  # noqa: E402
from handwrite.config import (  # noqa: E402
    DecoderSpec,  # noqa: E402
    ModelConfig,
    TrainConfig,
)
from handwrite.datasets import load_dataset  # noqa: E402
from handwrite.model import CRNN  # noqa: E402
from handwrite.training import make_trainee, train_step, training_set  # noqa: E402


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench_train(args) -> dict:
    """Optimizer steps of `handwrite train`'s own train_step (autocast, clipping, AdamW) on real batches."""
    records = load_dataset(args.data, split=args.split)
    alphabet = Alphabet.from_texts(r.text for r in records)
    defaults = ModelConfig()
    cfg = ModelConfig(
        height=args.height or defaults.height,
        channels=[int(c) for c in args.channels.split(",")] if args.channels else defaults.channels,
        width_pools=args.width_pools if args.width_pools is not None else defaults.width_pools,
        lstm_layers=args.lstm_layers or defaults.lstm_layers,
        cell=args.cell,
        num_classes=len(alphabet),
    )
    train_cfg = TrainConfig(
        batch_size=args.batch_size or TrainConfig().batch_size,
        precision=args.precision,
        shortcut_weight=args.shortcut_weight,
    )
    torch.manual_seed(0)
    model = CRNN(cfg)
    net, optimizer = make_trainee(model, train_cfg)
    # The lines as training holds them: in a memory-mapped file that the DataLoader worker reads.
    scratch = tempfile.TemporaryDirectory(prefix="bench-train-")
    dataset = training_set(records, alphabet, cfg.height, train_cfg, Path(scratch.name))
    sampler = WidthBatchSampler(dataset.widths, train_cfg.batch_size, shuffle=True)
    loader = torch.utils.data.DataLoader(
        dataset, batch_sampler=sampler, collate_fn=collate, num_workers=train_cfg.workers
    )
    ctc = torch.nn.CTCLoss(zero_infinity=True)
    net.train()
    lines, t0 = 0, None
    for step, batch in enumerate(loader):
        if step == args.warmup:
            lines, t0 = 0, time.perf_counter()
        train_step(net, batch, optimizer, ctc, train_cfg.lr, train_cfg, torch.device("cpu"))
        lines += len(batch[1])
        if step + 1 == args.warmup + args.steps:
            break
    seconds = time.perf_counter() - t0
    return {
        "mode": "train",
        "data": str(args.data),
        "split": args.split,
        "height": cfg.height,
        "channels": cfg.channels,
        "lstm_layers": cfg.lstm_layers,
        "batch_size": train_cfg.batch_size,
        "precision": train_cfg.precision,
        "cell": cfg.cell,
        "shortcut_weight": train_cfg.shortcut_weight,
        "steps": args.steps,
        "lines": lines,
        "lines_per_s": round(lines / seconds, 2),
        "params": sum(p.numel() for p in model.parameters()),
        "threads": torch.get_num_threads(),
        "peak_rss_mib": round(peak_rss_mib()),
    }


def bench_infer(args) -> dict:
    t0 = time.perf_counter()
    load(args.model, spec=DecoderSpec())  # .pt, or .onnx from `handwrite export` (run by onnxruntime)
    load_s = time.perf_counter() - t0
    records = load_dataset(args.data, split=args.split)[: args.lines]
    paths = [r.image for r in records]
    out = {"mode": "infer", "model": str(args.model), "lines": len(paths), "model_load_s": round(load_s, 3)}
    decoders = {"greedy": DecoderSpec(), "beam": DecoderSpec(decoder="beam", beam=args.beam)}
    if args.lm:
        decoders["beam_lm"] = DecoderSpec(
            decoder="beam",
            lm=str(args.lm),
            lm_weight=args.lm_weight,
            insertion_bonus=args.insertion_bonus,
            beam=args.beam,
        )
        if args.lexicon:
            decoders["beam_lm_lexicon"] = DecoderSpec(
                decoder="beam",
                lm=str(args.lm),
                lexicon=str(args.lexicon),
                lm_weight=args.lm_weight,
                insertion_bonus=args.insertion_bonus,
                beam=args.beam,
            )
    saved = decoding(args.model)  # the model's own settings (.decoding.json), as eval and transcribe read it
    if saved.decoder == "beam":
        decoders["saved"] = saved
    for name, spec in decoders.items():
        for batch in (1, 16):
            rec = load(args.model, batch_size=batch, spec=spec)
            rec.transcribe(paths[:16])  # warm-up
            t0 = time.perf_counter()
            rec.transcribe(paths)
            out[f"{name}_batch{batch}_lines_per_s"] = round(len(paths) / (time.perf_counter() - t0), 2)
    out["threads"] = torch.get_num_threads()
    out["peak_rss_mib"] = round(peak_rss_mib())
    return out


def bench_read(args) -> dict:
    t0 = time.perf_counter()
    records = load_dataset(args.data, split=args.split)
    t1 = time.perf_counter()
    dataset = LineDataset(records, Alphabet.from_texts(r.text for r in records), args.height)
    t2 = time.perf_counter()
    return {
        "lines": len(dataset),
        "skipped": len(dataset.skipped),
        "parse_s": round(t1 - t0, 2),
        "decode_s": round(t2 - t1, 2),
        "lines_per_s": round(len(records) / (t2 - t0), 1),
        "decoded_mib": round(sum(w * args.height for w in dataset.widths) / 2**20, 1),
        "kept_mib": round(sum(len(x) for x in dataset.lines) / 2**20, 1),  # packed (preprocess.pack_line)
        "peak_rss_mib": round(peak_rss_mib()),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="mode", required=True)
    t = sub.add_parser("train")
    t.add_argument("data", type=Path)
    t.add_argument("--split", default="train")
    t.add_argument("--steps", type=int, default=60)
    t.add_argument("--warmup", type=int, default=5)
    # Unset: handwrite's own defaults (ModelConfig, TrainConfig).
    t.add_argument("--batch-size", type=int)
    t.add_argument("--height", type=int)
    t.add_argument("--channels")
    t.add_argument("--width-pools", type=int)
    t.add_argument("--lstm-layers", type=int)
    t.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    t.add_argument("--cell", choices=["lstm", "gru"], default="lstm")
    t.add_argument("--shortcut-weight", type=float, default=0.0)
    i = sub.add_parser("infer")
    i.add_argument("model", type=Path)
    i.add_argument("data", type=Path)
    i.add_argument("--split", default="test")
    i.add_argument("--lines", type=int, default=200)
    i.add_argument("--lm", type=Path)
    i.add_argument("--lexicon", type=Path)
    i.add_argument("--lm-weight", type=float, default=DecoderSpec().lm_weight)
    i.add_argument("--insertion-bonus", type=float, default=DecoderSpec().insertion_bonus)
    i.add_argument("--beam", type=int, default=DecoderSpec().beam)
    r = sub.add_parser("read")
    r.add_argument("data", type=Path)
    r.add_argument("--split")
    r.add_argument("--height", type=int, default=64)
    for p in (t, i):
        p.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(getattr(args, "threads", 1))
    print(json.dumps({"train": bench_train, "infer": bench_infer, "read": bench_read}[args.mode](args)))


if __name__ == "__main__":
    main()
