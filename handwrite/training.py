"""The training loop: CTC on width-grouped batches, validation CER every epoch.

Writes into an output folder:

* ``last.pt``       -- everything needed to resume (weights, optimizer, schedule,
                       position in the epoch, RNG); written atomically at every
                       epoch end, every ``save_every`` steps and when stopping.
* ``best.pt``       -- the weights with the lowest validation CER so far.
* ``epoch-N.pt``    -- with ``keep_epochs``, the weights at the end of epoch N (to average the last few).
* ``metrics.jsonl`` -- one JSON record per validation (each epoch's end, and a stop mid-epoch).

Read top-down: :func:`train` locks the folder and calls :func:`_setup` (the run's
settings, model, optimizer and data, fresh or resumed), then :func:`_run` walks the
epochs, each a sequence of :func:`train_step` calls followed by :func:`_validate`.
The learning-rate schedule and early stopping live in :mod:`handwrite.schedule`.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch

from . import checkpoint, signals
from .atomic import atomic_write
from .batching import LineDataset, WidthBatchSampler, collate, shared_files
from .codec import Alphabet
from .config import (
    ADAPT_EPOCH_LINES,
    ADAPT_LR,
    ADAPT_STEPS,
    ADAPT_WARMUP,
    PSEUDO_KEEP,
    DecoderSpec,
    ModelConfig,
    TrainConfig,
)
from .datasets import LineRecord
from .decoding import load_spec, save_spec
from .devices import resolve_device
from .errors import HandwriteError
from .metrics import evaluate
from .model import CRNN
from .networks import TorchNetwork
from .optimizer import AdamW
from .progress import bar
from .recognize import Recognizer
from .schedule import Schedule, TrainState


@dataclass
class Distributed:
    """Where this process stands in a torchrun job (one process: rank 0 of 1)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    owns_group: bool = False  # this run joined the group, so it leaves it at the end

    @property
    def main(self) -> bool:
        return self.rank == 0


def start_distributed(device: str) -> Distributed:
    """Join the process group torchrun describes in the environment (WORLD_SIZE, RANK, ...):
    gloo between CPU processes, nccl between GPUs. Without torchrun, a single process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return Distributed()
    import torch.distributed as dist

    owns = not dist.is_initialized()
    if owns:
        # DistributedDataParallel imports torch._dynamo, and that import keeps 10 references to a process
        # group that exists by then (torch 2.14): destroy_process_group could not free the group, gloo's
        # worker threads lived on into the interpreter's exit, and one that let go of a finished
        # collective's tensor there aborted the process ("terminate called without an active exception";
        # a core dump showed it in take_gil under Py_FinalizeEx; 1 two-process run in about 150 under
        # load, and CI twice). Imported before the group exists, it holds none.
        import torch._dynamo  # noqa: F401

        dist.init_process_group("nccl" if resolve_device(device).type == "cuda" else "gloo")
    return Distributed(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")), owns)


def _all_sum(values: list[float], ddp: Distributed) -> list[float]:
    if ddp.world == 1:
        return values
    t = torch.tensor(values, dtype=torch.float64)
    torch.distributed.all_reduce(t)
    return t.tolist()


class ShortcutCTC(torch.nn.Module):
    """The model plus a training-only CTC head on its CNN features (Retsinas et al. 2022): a 1x3
    convolution along the line straight to the classes. Its loss, weighted by ``shortcut_weight``,
    is added to the main one, so the CNN learns characters before the recurrent layers can pass
    them on. Called like the model, it returns the model's outputs plus the head's log-probabilities.
    The head is kept in last.pt (to resume), never in best.pt or an export: recognition ignores it."""

    def __init__(self, model: CRNN):
        super().__init__()
        self.model = model
        self.conv = torch.nn.Conv1d(model.features_size, model.cfg.num_classes, 3, padding=1)

    def forward(self, images: torch.Tensor, widths: torch.Tensor):
        f, lengths = self.model.features(images, widths)
        shortcut = self.conv(f.permute(1, 2, 0)).permute(2, 0, 1).log_softmax(-1)
        return self.model.classify(f, lengths), lengths, shortcut


def make_optimizer(model: CRNN, cfg: TrainConfig, *extra: torch.nn.Module) -> AdamW:
    """AdamW over the trainable parameters of the model (all but a frozen part) and of ``extra``
    training-only modules, without weight decay on biases and normalisation weights."""
    if cfg.freeze:
        getattr(model, cfg.freeze).requires_grad_(False)
    trainable = [p for m in (model, *extra) for p in m.parameters() if p.requires_grad]
    return AdamW(
        [
            {"params": [p for p in trainable if p.ndim > 1], "weight_decay": cfg.weight_decay},
            {"params": [p for p in trainable if p.ndim <= 1], "weight_decay": 0.0},
        ],
        lr=cfg.lr,
    )


def make_trainee(model: CRNN, cfg: TrainConfig) -> tuple[torch.nn.Module, AdamW]:
    """What a training step calls (the model, or its :class:`ShortcutCTC` when ``cfg`` weighs a
    shortcut head) and the optimizer over all of it."""
    if cfg.shortcut_weight > 0:
        trainee = ShortcutCTC(model)
        return trainee, make_optimizer(model, cfg, trainee.conv)
    return model, make_optimizer(model, cfg)


def train_step(net, batch, optimizer, ctc, lr: float, cfg: TrainConfig, device) -> float:
    """One optimizer step on one batch (what bench.py times too): forward under the run's autocast,
    CTC loss in fp32 (plus the shortcut head's, when ``net`` has one), backward, gradient clipping,
    AdamW at ``lr``. Returns the batch's mean loss of the model's own output."""
    images, widths, targets, target_lengths, _ = batch
    targets, target_lengths = targets.to(device), target_lengths.to(device)
    for group in optimizer.param_groups:
        group["lr"] = lr
    # bf16 on the CPU too: CPUs with AVX-512 bf16 / AMX run the convolutions and LSTMs in it.
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.precision == "bf16"):
        log_probs, lengths, *shortcut = net(images.to(device), widths.to(device))
    loss = ctc(log_probs.float(), targets, lengths, target_lengths)
    total = loss
    if shortcut:
        total = loss + cfg.shortcut_weight * ctc(shortcut[0].float(), targets, lengths, target_lengths)
    optimizer.zero_grad()
    total.backward()
    torch.nn.utils.clip_grad_norm_(net.parameters(), cfg.grad_clip)
    optimizer.step()
    return loss.item()


def train(
    train_records: Sequence[LineRecord],
    val_records: Sequence[LineRecord],
    out_dir: str | Path,
    model_cfg: ModelConfig | None = None,
    cfg: TrainConfig | None = None,
    resume: bool = False,
    show_progress: bool = True,
    log=print,
    device: str = "cpu",
) -> dict:
    """Train (or resume training) a model; returns the final epoch's metrics record.

    Started by torchrun, each process trains on its share of every batch under
    DistributedDataParallel; only rank 0 validates, logs and writes files, so the
    output folder looks exactly like a one-process run's. The run folder is locked
    while it runs: a second run into it is refused."""
    ddp = start_distributed(device)
    lock = _lock_run_folder(Path(out_dir)) if ddp.main else None
    try:
        if not ddp.main:
            show_progress, log = False, (lambda m: None)
        run = _setup(
            ddp,
            train_records,
            Path(out_dir),
            model_cfg or ModelConfig(),
            cfg or TrainConfig(),
            resume,
            show_progress,
            log,
            resolve_device(device, ddp.local_rank if ddp.world > 1 else None),
        )
        return _run(run, val_records, show_progress, log)
    finally:
        if ddp.local_rank == 0:
            # Mapped files stay readable to whoever still has them open after the unlink.
            for path in shared_files(_shared_lines(Path(out_dir))):
                path.unlink(missing_ok=True)
        if lock is not None:
            lock.close()


# Measured on held-out writers (README, "Adapting without corrections"): pseudo-labels mixed into 16 or
# 64 corrected lines read worse than the corrected lines alone in 5 runs of 6 (up to 6.4 points; one 0.4
# better); in turn (self-training, then the corrected lines) 0.02-0.7 better for the two writers whom
# adapting helps, 0.9 worse for the one whom it does not.
SELF_TRAIN_FIRST = (
    "give corrected lines or uncorrected ones, not both: adapt on the uncorrected lines first, then on the "
    "corrected ones from its best.pt (-m OUT/best.pt), which read better than the two mixed"
)


def adapt(
    records: Sequence[LineRecord],
    out_dir: str | Path,
    model: str | Path | None = None,
    steps: int = ADAPT_STEPS,
    resume: bool = False,
    show_progress: bool = True,
    log=print,
    device: str = "cpu",
    uncorrected: Sequence[LineRecord] = (),
    keep: float = PSEUDO_KEEP,
    seed: int = TrainConfig.seed,
) -> dict:
    """Fine-tune ``model`` (a ``.pt`` checkpoint; default: the shipped model's) on a few corrected
    lines of one hand: ``steps`` steps of batch 8 with augmentation at learning rate ``ADAPT_LR`` after
    ``ADAPT_WARMUP`` warm-up steps (halved after 3 epochs without progress), the lines repeated to
    epochs of at least ``ADAPT_EPOCH_LINES``, each epoch validated on the same lines (too few to spare
    some), so ``best.pt`` is the model that fits them best; it keeps the starting model's decoding
    settings.
    Instead of corrected ``records``, ``uncorrected`` lines of the hand
    (:func:`~handwrite.pseudolabels.unlabelled_lines`; their text is not looked at) are read by the
    starting model as it decodes, and the surest ``keep`` fraction of its readings is trained on
    (self-training); every reading goes to ``out_dir/pseudo-labels.tsv``. With both kinds of lines,
    self-train first and adapt that model on the corrected lines. ``seed`` draws the augmentation and the
    order of the lines (another seed, another run of the same recipe).
    Returns the final metrics record, as :func:`train` does."""
    from .bundle import default_model

    start = Path(model) if model is not None else default_model().with_name("model.pt")
    if start.suffix == ".onnx":
        raise HandwriteError(f"{start}: an ONNX export cannot be trained; adapt its PyTorch checkpoint (.pt)")
    if not start.is_file():
        raise HandwriteError(f"{start}: model file not found")
    if records and uncorrected:
        raise HandwriteError(SELF_TRAIN_FIRST)
    records = list(records)
    if uncorrected:
        if not resume:
            _check_new_run(Path(out_dir))  # before minutes of reading, not after
        records = _pseudo_labels(start, uncorrected, keep, Path(out_dir), device, show_progress, log)
    if not records:
        raise HandwriteError("nothing to adapt to: no lines given, or no reading of an uncorrected line kept")
    spec = load_spec(start) or DecoderSpec()
    cfg = TrainConfig(
        init_from=str(start),
        max_slope=spec.max_slope,  # the lines prepared as the adapted model, which keeps them, will read
        min_ink_height=spec.min_ink_height,
        margin=spec.margin,
        lr=ADAPT_LR,
        warmup_steps=ADAPT_WARMUP,
        max_steps=steps,
        epochs=1_000_000,  # the step budget ends it
        patience=1_000_000,
        seed=seed,
    )
    repeats = -(-ADAPT_EPOCH_LINES // len(records))
    return train(
        records * repeats,
        records,
        out_dir,
        cfg=cfg,
        resume=resume,
        show_progress=show_progress,
        log=log,
        device=device,
    )


def _pseudo_labels(
    start: Path, lines, keep: float, out: Path, device: str, show_progress: bool, log
) -> list[LineRecord]:
    """The starting model's surest readings of uncorrected ``lines``; all its readings are written to
    ``out/pseudo-labels.tsv`` (line, reading, confidence, kept) for a look, unreadable lines logged."""
    from .bundle import load
    from .pseudolabels import pseudo_label

    reader = load(start, device=device, threads=torch.get_num_threads())
    with bar(len(lines), "reading the uncorrected lines", show_progress) as b:
        kept, results = pseudo_label(reader, lines, keep, b.advance)
    chosen = {record.id for record in kept}
    rows = ["line\ttext\tconfidence\tkept"]
    for record, result in zip(lines, results):
        if result.error is not None:
            log(f"skipped: {result.error}")
        else:
            rows.append(f"{record.image}\t{result.text}\t{result.confidence:.4f}\t{int(record.id in chosen)}")
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(out / "pseudo-labels.tsv", lambda f: f.write(("\n".join(rows) + "\n").encode("utf-8")))
    log(f"self-training on {len(kept)} of {len(lines)} uncorrected lines, the surest readings (pseudo-labels.tsv)")
    return kept


def _shared_lines(out: Path) -> Path:
    """Where a machine's training processes share their decoded lines (LineDataset.share)."""
    return out / f".lines-{socket.gethostname()}.npy"


@dataclass
class _Run:
    """Everything a run holds while it trains."""

    ddp: Distributed
    out: Path
    cfg: TrainConfig
    state: TrainState
    alphabet: Alphabet
    model: CRNN
    shortcut: ShortcutCTC | None
    net: torch.nn.Module  # what a step calls: the model or its ShortcutCTC, DDP-wrapped with several processes
    optimizer: AdamW
    sampler: WidthBatchSampler
    loader: torch.utils.data.DataLoader
    device: torch.device

    def save_last(self) -> None:
        if self.ddp.main:
            checkpoint.save(
                self.out / "last.pt",
                self.model,
                self.alphabet,
                optimizer=self.optimizer.state_dict(),
                rng=torch.get_rng_state(),
                train_config=asdict(self.cfg),
                train_state=asdict(self.state),
                **({"shortcut": self.shortcut.conv.state_dict()} if self.shortcut is not None else {}),
            )


def _setup(ddp, train_records, out, model_cfg, cfg, resume, show_progress, log, dev) -> _Run:
    """A fresh run (optionally from a pretrained model), or the one in ``out`` resumed exactly."""
    last = out / "last.pt"
    saved = init = None
    if resume:
        saved = checkpoint.load_state(last) if last.exists() else None
        if saved is None:
            kept = (
                " (best.pt is kept; --init it in a new folder to go on from it)" if (out / "best.pt").exists() else ""
            )
            raise HandwriteError(f"{last}: nothing to resume (no last.pt in {out}){kept}")
        if "train_state" not in saved:
            raise HandwriteError(f"{last}: holds no training state to resume from")
        # The run keeps its own settings; only the limits, the precision and keeping each epoch's
        # weights may be changed when resuming.
        limits = {k: getattr(cfg, k) for k in ("epochs", "max_minutes", "max_steps", "precision", "keep_epochs")}
        cfg = TrainConfig(**{**saved["train_config"], **limits})
        model_cfg = ModelConfig(**saved["model_config"])
        alphabet = Alphabet(saved["alphabet"])
        state = TrainState(**saved["train_state"])
    else:
        _check_new_run(out)
        alphabet = Alphabet.from_texts(r.text for r in train_records)
        if cfg.init_from is not None:
            init = checkpoint.load_state(cfg.init_from)
            # The pretrained model keeps its architecture and its characters' output rows;
            # characters new in this training text get fresh rows after them.
            known = list(init["alphabet"])
            alphabet = Alphabet(known + sorted(set(alphabet.chars) - set(known)))
            model_cfg = ModelConfig(**init["model_config"])
            if cfg.add_layers:
                model_cfg = replace(
                    model_cfg,
                    lstm_layers=model_cfg.lstm_layers + cfg.add_layers,
                    residual_layers=model_cfg.residual_layers + cfg.add_layers,
                )
        model_cfg.num_classes = len(alphabet)
        state = TrainState()

    torch.manual_seed(cfg.seed)
    model = CRNN(model_cfg)
    net, optimizer = make_trainee(model, cfg)
    shortcut = net if isinstance(net, ShortcutCTC) else None
    if saved is not None:
        model.load_state_dict(saved["model"])
        if shortcut is not None:
            shortcut.conv.load_state_dict(saved["shortcut"])
        torch.set_rng_state(saved["rng"])
    elif init is not None:
        model.load_state_dict(_widened(init["model"], model.state_dict()))
    net.to(dev)  # after the weights (widening needs them on one device), before the optimizer state:
    if saved is not None:  # it is loaded onto its parameters' device
        optimizer.load_state_dict(saved["optimizer"])
    if ddp.world > 1:
        # Averages gradients across processes; every rank starts from rank 0's weights.
        net = torch.nn.parallel.DistributedDataParallel(net, device_ids=[dev.index] if dev.type == "cuda" else None)

    log(f"reading {len(train_records)} training lines")
    train_set = training_set(train_records, alphabet, model_cfg.height, cfg, out, ddp, show_progress)
    for reason in train_set.skipped[:20]:
        log(f"warning: skipped unreadable training line: {reason}")
    if len(train_set.skipped) > 20:
        log(f"warning: {len(train_set.skipped) - 20} more unreadable training lines skipped")
    if train_set.unknown:
        # Only possible when resuming on other data: the alphabet is fixed by the first run.
        chars = "".join(sorted(train_set.unknown))
        log(
            f"warning: {sum(train_set.unknown.values())} training characters are not in the model's alphabet and are skipped: {chars!r}"
        )
    sampler = WidthBatchSampler(
        train_set.widths, cfg.batch_size, shuffle=True, seed=cfg.seed, rank=ddp.rank, world=ddp.world
    )
    loader = torch.utils.data.DataLoader(
        train_set,
        batch_sampler=sampler,
        collate_fn=collate,
        num_workers=cfg.workers,
        persistent_workers=cfg.workers > 0,
        worker_init_fn=_ignore_interrupts,
        # Its own generator keeps the loader from drawing on the global RNG, which
        # dropout uses and last.pt saves: a resumed run then matches an unbroken one.
        generator=torch.Generator().manual_seed(cfg.seed),
    )
    out.mkdir(parents=True, exist_ok=True)
    if saved is not None and ddp.main:
        _drop_records_after(out / "metrics.jsonl", state)
    if init is not None and ddp.main:
        _inherit_decoding(Path(cfg.init_from), out / "best.pt", alphabet.chars[len(init["alphabet"]) :], log)
    return _Run(ddp, out, cfg, state, alphabet, model, shortcut, net, optimizer, sampler, loader, dev)


def _inherit_decoding(init_model: Path, best: Path, new_chars: list[str], log) -> None:
    """Fine-tuning keeps the decoding settings of the model it started from (its LMs, their weights,
    ``max_density``, ``min_ink_height``, ``max_slope``, ``margin``, ``read_as``) for ``best.pt``, so that an
    adapted model reads the way the one it came from did. An LM cannot score characters that model did not
    have: with new ones, only the reading is kept."""
    spec = load_spec(init_model)
    if spec is None:
        return
    if new_chars and spec.lm_files:
        spec = spec.reading()
        log(
            f"note: the LM of {init_model} does not know the new characters {''.join(new_chars)!r}: best.pt decodes "
            "greedily (build an LM with `lm build --alphabet-of best.pt` and `lm tune` it)"
        )
    save_spec(best, spec)


def training_set(
    records, alphabet, height: int, cfg: TrainConfig, out: Path, ddp: Distributed | None = None, show_progress=False
) -> LineDataset:
    """The decoded training lines. Under DDP, once per machine: its first process decodes and writes
    the packed lines to a file in ``out`` that the others map (each process decoding everything held
    N copies, and took as long). With DataLoader workers the lines go to that file in a single process
    too: the workers read them from the page cache and the training process never holds them (on
    iam-hooker: 46 MB, whose freed heap the training steps then reuse)."""

    def decode() -> LineDataset:
        with bar(len(records), "reading images", show_progress) as b:
            return LineDataset(
                records,
                alphabet,
                height,
                cfg.augment,
                cfg.seed,
                b.advance,
                workers=cfg.workers,
                max_slope=cfg.max_slope,
                min_ink_height=cfg.min_ink_height,
                margin=cfg.margin,
            )

    ddp = ddp or Distributed()
    if ddp.world == 1:
        train_set = decode()
        if cfg.workers:
            train_set.share(_shared_lines(out))
        return train_set
    shared, failure = _shared_lines(out), None
    if ddp.local_rank == 0:
        try:
            out.mkdir(parents=True, exist_ok=True)
            train_set = decode()
            train_set.share(shared)
        except Exception as e:  # the others must hear of it, or they would wait for the file forever
            failure = e
    failed = torch.tensor([failure is not None], dtype=torch.int32)
    torch.distributed.all_reduce(failed, torch.distributed.ReduceOp.MAX)
    if failure is not None:
        raise failure
    if failed.item():
        raise HandwriteError("the training lines could not be read (the first process says why)")
    if ddp.local_rank == 0:
        return train_set
    return LineDataset(records, alphabet, height, cfg.augment, cfg.seed, shared=shared)


def _run(run: _Run, val_records, show_progress, log) -> dict:
    """The epochs: steps until the epoch, step, time or patience limit, validating after each epoch."""
    cfg, ddp, schedule = run.cfg, run.ddp, Schedule.of(run.cfg)
    # as the lines were trained
    reading = DecoderSpec(max_slope=cfg.max_slope, min_ink_height=cfg.min_ink_height, margin=cfg.margin)
    validator = Recognizer(TorchNetwork(run.model, run.device), run.alphabet, cache=True, decoder=reading)
    ctc = torch.nn.CTCLoss(blank=0, reduction="mean", zero_infinity=True)
    frozen = getattr(run.model, cfg.freeze) if cfg.freeze else None

    # Ctrl-C and SIGTERM (a scheduler's kill, a closed terminal) stop the run with last.pt written. Inside
    # an optimizer step (forward, backward, update, counters) the signal only raises a flag, acted on
    # when the step is complete: stopping halfway would save weights, BatchNorm statistics and counters
    # that disagree, and the resumed run would drift from an unbroken one. The same while a batch comes
    # from a loader process: interrupted while taking over the batch's shared memory, the worker's
    # side of the hand-over printed a traceback (EOFError in multiprocessing's resource sharer).
    busy = [False]  # in a step, receiving a batch, or ending an epoch (checkpoint.save holds signals itself)
    stop_signal = [False]

    def on_signal(signum, frame):
        if busy[0]:
            stop_signal[0] = True
        else:
            raise KeyboardInterrupt

    previous_handlers = signals.install(on_signal)
    state = run.state
    started = time.monotonic() - state.elapsed
    record: dict = {}
    stop_reason = None
    try:
        with bar(len(run.sampler), f"epoch {state.epoch + 1}", show_progress) as b:
            while state.epoch < cfg.epochs and stop_reason is None:
                run.net.train()
                if frozen is not None:
                    frozen.eval()  # frozen BatchNorm layers keep their running statistics too
                run.sampler.epoch = state.epoch
                run.sampler.skip = state.step_in_epoch
                b.reset(len(run.sampler), f"epoch {state.epoch + 1}")
                b.advance(state.step_in_epoch)
                loss_sum, lines, epoch_t0 = 0.0, 0, time.monotonic()
                busy[0] = True
                batches = iter(run.loader)
                while True:
                    busy[0] = True
                    batch = next(batches, None)
                    busy[0] = batch is not None  # still busy: the step on it comes next
                    if stop_signal[0]:
                        raise KeyboardInterrupt
                    if batch is None:
                        break
                    loss = train_step(run.net, batch, run.optimizer, ctc, schedule.lr_at(state), cfg, run.device)
                    state.step += 1
                    state.step_in_epoch += 1
                    loss_sum += loss * len(batch[1])
                    lines += len(batch[1])
                    speed = lines / max(time.monotonic() - epoch_t0, 1e-9)
                    b.advance(1, info=f"loss {loss_sum / lines:.3f}  {speed:.1f} lines/s")
                    state.elapsed = time.monotonic() - started
                    busy[0] = False
                    if stop_signal[0]:
                        raise KeyboardInterrupt
                    stop_reason = _limit_reached(state, cfg, ddp)
                    if stop_reason:
                        break
                    if state.step % cfg.save_every == 0:
                        run.save_last()
                epoch_done = state.step_in_epoch >= len(run.sampler)  # even if a limit stopped it on its last batch
                loss_sum, lines = _all_sum([loss_sum, lines], ddp)
                speed = lines / max(time.monotonic() - epoch_t0, 1e-9)
                ev = evaluate(validator, val_records) if ddp.main else None  # a stop here records nothing of it
                # From the schedule's turn to last.pt the epoch's end is one unit, like a step: stopped
                # between them, last.pt held the turn taken but the epoch not advanced, and the resumed
                # run took the turn again (one more bad epoch, an earlier halving of the rate).
                busy[0] = True
                if ddp.main:
                    record = _record_epoch(run, ev, schedule, loss_sum / max(lines, 1), speed, epoch_done)
                    b.print(
                        f"epoch {record['epoch']}: loss {record['train_loss']:.3f}  val CER {record['val_cer']:.2%}  "
                        f"WER {record['val_wer']:.2%}  {record['train_lines_per_s']:.1f} lines/s",
                        log,
                    )
                if ddp.world > 1:
                    # Rank 0 alone validated: everyone takes its schedule and stopping decisions.
                    shared = [state]
                    torch.distributed.broadcast_object_list(shared, src=0)
                    state = run.state = shared[0]
                if epoch_done:
                    state.epoch += 1
                    state.step_in_epoch = 0
                    if schedule.should_stop(state):
                        stop_reason = f"no improvement for {cfg.patience} epochs"
                run.save_last()
                busy[0] = False
                if stop_signal[0]:
                    raise KeyboardInterrupt
        if ddp.world > 1:
            torch.distributed.barrier()  # leave together: no rank tears down the group while rank 0 still writes
    except KeyboardInterrupt:
        state.elapsed = time.monotonic() - started
        run.save_last()  # a second Ctrl-C waits for the write (checkpoint.save holds signals)
        log(f"interrupted; resumable state saved to {run.out / 'last.pt'}")
        raise
    finally:
        signals.restore(previous_handlers)
        if ddp.owns_group:
            # The DDP wrapper's reducer holds the group: released first, the group (and gloo's threads)
            # ends here, while the interpreter is whole (see start_distributed).
            run.net = None
            torch.distributed.destroy_process_group()
    log(f"stopped ({stop_reason or 'all epochs done'}); best val CER {state.best_saved_cer:.2%}")
    return {**record, "stop_reason": stop_reason or "epochs", "best_val_cer": state.best_saved_cer}


def _limit_reached(state: TrainState, cfg: TrainConfig, ddp: Distributed) -> str | None:
    reason = None
    if cfg.max_steps is not None and state.step >= cfg.max_steps:
        reason = "max_steps"
    elif cfg.max_minutes is not None and state.elapsed >= cfg.max_minutes * 60:
        reason = "time budget"
    if ddp.world > 1:
        # Clocks differ between processes: all stop at the step where the first one would.
        flag = torch.tensor([reason is not None], dtype=torch.int32)
        torch.distributed.all_reduce(flag, torch.distributed.ReduceOp.MAX)
        reason = reason or ("time budget" if flag.item() else None)
    return reason


def _record_epoch(run: _Run, ev, schedule: Schedule, loss: float, speed: float, epoch_done: bool) -> dict:
    """After validation ``ev``: best.pt when its CER is the lowest yet, the schedule's turn (whole epochs
    only), and the epoch's record appended to metrics.jsonl."""
    state = run.state
    weights_to = []
    if ev.counts.cer < state.best_saved_cer:
        state.best_saved_cer = ev.counts.cer
        weights_to.append(run.out / "best.pt")
    if epoch_done and run.cfg.keep_epochs:
        weights_to.append(run.out / f"epoch-{state.epoch + 1}.pt")
    for path in weights_to:
        checkpoint.save(path, run.model, run.alphabet, train_config=asdict(run.cfg), val_cer=ev.counts.cer)
    if epoch_done:
        schedule.end_epoch(state, ev.counts.cer)
    record = {
        "epoch": state.epoch + 1,
        "complete_epoch": epoch_done,
        "step": state.step,
        "train_loss": loss,
        "val_cer": ev.counts.cer,
        "val_wer": ev.counts.wer,
        "lr": schedule.lr_at(state),  # the rate the next step takes (cosine, warm-up and halvings included)
        "train_lines_per_s": speed,
        "elapsed_s": round(state.elapsed, 1),
    }
    with (run.out / "metrics.jsonl").open("a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")
    return record


RUN_FILES = ("last.pt", "best.pt", "metrics.jsonl")


def _check_new_run(out: Path) -> None:
    if any((out / name).exists() for name in RUN_FILES):
        raise HandwriteError(
            f"{out}: already holds a training run; pass --resume to continue it or choose another folder"
        )


def _ignore_interrupts(worker_id: int) -> None:
    """DataLoader workers leave Ctrl-C and SIGTERM to the main process, which stops at a step
    boundary: a worker killed by the terminal's SIGINT, or by a SIGTERM sent to the whole group
    (a scheduler's kill, `pkill -f`), made the main process die of "DataLoader worker killed"
    instead of saving (5 of 8 group SIGTERMs did, 2026-11-30). A worker still exits when the
    main process tells it to, or when the main process is gone."""
    for sig in signals.STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)


def _lock_run_folder(out: Path):
    """An exclusive lock on the run folder for as long as the returned file stays open. The kernel
    drops it when the process dies, however it dies, so a kill -9 leaves no stale lock behind."""
    import fcntl

    out.mkdir(parents=True, exist_ok=True)
    f = open(out / ".lock", "a+")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.seek(0)
        holder = f.read().strip() or "another process"
        f.close()
        raise HandwriteError(
            f"{out}: another training run is using this folder (process {holder}); "
            "wait for it, stop it, or choose another folder"
        ) from None
    f.seek(0)
    f.truncate()
    f.write(f"{os.getpid()}\n")
    f.flush()
    return f


def _drop_records_after(metrics_path: Path, state: TrainState) -> None:
    """Keep metrics.jsonl consistent with last.pt: drop records written after the state it holds
    (a crash between a record and the next save would otherwise log that stretch twice)."""
    if not metrics_path.exists():
        return
    keep = []
    for line in metrics_path.read_text(encoding="utf-8").splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue  # a line cut by the crash
        done_before = rec.get("step", 0) < state.step
        same_step = rec.get("step", 0) == state.step and (
            not rec.get("complete_epoch") or rec.get("epoch", 0) <= state.epoch
        )
        if done_before or same_step:
            keep.append(line)
    atomic_write(metrics_path, lambda f: f.write("".join(k + "\n" for k in keep).encode("utf-8")))


def _widened(pretrained: dict, fresh: dict) -> dict:
    """Pretrained weights with the output layer padded by the fresh model's rows for new characters,
    and the fresh weights of layers the run adds (``--add-layers``)."""
    weights = {**fresh, **pretrained}
    for name in ("head.weight", "head.bias"):
        rows = pretrained[name].shape[0]
        weights[name] = torch.cat([pretrained[name].to(fresh[name].dtype), fresh[name][rows:]])
    return weights
