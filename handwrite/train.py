"""The training loop: CTC on width-grouped batches, validation CER every epoch.

Writes into an output folder:

* ``last.pt``       -- everything needed to resume (weights, optimizer, schedule,
                       position in the epoch, RNG); written atomically at every
                       epoch end, every ``save_every`` steps and when stopping.
* ``best.pt``       -- the weights with the lowest validation CER so far.
* ``metrics.jsonl`` -- one JSON record per epoch.

Learning rate: linear warm-up, then halved whenever validation CER has not
improved for ``lr_patience`` epochs. Unlike a cosine or one-cycle schedule
this needs no total step count, so it suits runs bounded by wall-clock time.
"""

from __future__ import annotations

import json
import math
import os
import signal
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from collections.abc import Sequence

import torch

from . import checkpoint
from .codec import Alphabet
from .datasets import LineRecord
from .config import ModelConfig, TrainConfig
from .errors import HandwriteError
from .model import CRNN
from .preprocess import LineDataset, WidthBatchSampler, collate
from .progress import bar
from .recognize import Recognizer, evaluate, resolve_device


@dataclass
class TrainState:
    """Where a run stands; saved in last.pt so that --resume carries on exactly."""

    epoch: int = 0
    step_in_epoch: int = 0
    step: int = 0
    lr_scale: float = 1.0
    best_cer: float = math.inf  # best CER at an epoch end: drives the schedule and early stopping
    best_epoch: int = -1
    bad_epochs: int = 0
    best_saved_cer: float = math.inf  # CER of best.pt, which a validation at a mid-epoch stop may also write
    elapsed: float = 0.0  # seconds of training so far, across resumes


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
        dist.init_process_group("nccl" if resolve_device(device).type == "cuda" else "gloo")
    return Distributed(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")), owns)


def _all_sum(values: list[float], ddp: Distributed) -> list[float]:
    if ddp.world == 1:
        return values
    t = torch.tensor(values, dtype=torch.float64)
    torch.distributed.all_reduce(t)
    return t.tolist()


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
        return _train(ddp, train_records, val_records, Path(out_dir), model_cfg, cfg, resume, show_progress, log, device)
    finally:
        if lock is not None:
            lock.close()


def _train(ddp: Distributed, train_records, val_records, out: Path, model_cfg, cfg, resume, show_progress, log, device) -> dict:
    dev = resolve_device(device, ddp.local_rank if ddp.world > 1 else None)
    if not ddp.main:
        show_progress, log = False, (lambda m: None)
    last = out / "last.pt"
    model_cfg = model_cfg or ModelConfig()
    cfg = cfg or TrainConfig()
    if resume:
        saved = checkpoint.load_state(last) if last.exists() else None
        if saved is None:
            kept = " (best.pt is kept; --init it in a new folder to go on from it)" if (out / "best.pt").exists() else ""
            raise HandwriteError(f"{last}: nothing to resume (no last.pt in {out}){kept}")
        if "train_state" not in saved:
            raise HandwriteError(f"{last}: holds no training state to resume from")
        # The run keeps its own settings; only the limits may be changed when resuming.
        limits = {k: getattr(cfg, k) for k in ("epochs", "max_minutes", "max_steps", "precision")}
        cfg = TrainConfig(**{**saved["train_config"], **limits})
        model_cfg = ModelConfig(**saved["model_config"])
        alphabet = Alphabet(saved["alphabet"])
        state = TrainState(**saved["train_state"])
    else:
        if any((out / name).exists() for name in RUN_FILES):
            raise HandwriteError(f"{out}: already holds a training run; pass --resume to continue it or choose another folder")
        alphabet = Alphabet.from_texts(r.text for r in train_records)
        if cfg.init_from is not None:
            init = checkpoint.load_state(cfg.init_from)
            # The pretrained model keeps its architecture and its characters' output rows;
            # characters new in this training text get fresh rows after them.
            known = list(init["alphabet"])
            alphabet = Alphabet(known + sorted(set(alphabet.chars) - set(known)))
            model_cfg = ModelConfig(**init["model_config"])
        model_cfg.num_classes = len(alphabet)
        state = TrainState()
        saved = None

    torch.manual_seed(cfg.seed)
    model = CRNN(model_cfg)
    frozen = getattr(model, cfg.freeze) if cfg.freeze else None
    if frozen is not None:
        frozen.requires_grad_(False)
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    decay = [p for n, p in trainable if p.ndim > 1]
    no_decay = [p for n, p in trainable if p.ndim <= 1]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr
    )
    if saved is not None:
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        torch.set_rng_state(saved["rng"])
    elif cfg.init_from is not None:
        model.load_state_dict(_widened(init["model"], model.state_dict()))
    model.to(dev)  # after loading: the optimizer state follows its parameters' device
    net = model
    if ddp.world > 1:
        # Averages gradients across processes; every rank starts from rank 0's weights.
        net = torch.nn.parallel.DistributedDataParallel(model, device_ids=[dev.index] if dev.type == "cuda" else None)
    # bf16 on the CPU too: CPUs with AVX-512 bf16 / AMX run the convolutions and LSTMs in it much faster.
    autocast = torch.autocast(dev.type, dtype=torch.bfloat16, enabled=cfg.precision == "bf16")

    log(f"reading {len(train_records)} training and {len(val_records)} validation lines")
    with bar(len(train_records), "reading images", show_progress) as b:
        train_set = LineDataset(train_records, alphabet, model_cfg.height, cfg.augment, cfg.seed, b.advance)
    for reason in train_set.skipped[:20]:
        log(f"warning: skipped unreadable training line: {reason}")
    if len(train_set.skipped) > 20:
        log(f"warning: {len(train_set.skipped) - 20} more unreadable training lines skipped")
    if train_set.unknown:
        # Only possible when resuming on other data: the alphabet is fixed by the first run.
        chars = "".join(sorted(train_set.unknown))
        log(f"warning: {sum(train_set.unknown.values())} training characters are not in the model's alphabet and are skipped: {chars!r}")
    sampler = WidthBatchSampler(train_set.widths, cfg.batch_size, shuffle=True, seed=cfg.seed, rank=ddp.rank, world=ddp.world)
    loader = torch.utils.data.DataLoader(
        train_set, batch_sampler=sampler, collate_fn=collate, num_workers=cfg.workers,
        persistent_workers=cfg.workers > 0, worker_init_fn=_ignore_interrupts,
        # Its own generator keeps the loader from drawing on the global RNG, which
        # dropout uses and last.pt saves: a resumed run then matches an unbroken one.
        generator=torch.Generator().manual_seed(cfg.seed),
    )
    validator = Recognizer(model, alphabet, device=str(dev), cache=True)
    ctc = torch.nn.CTCLoss(blank=0, reduction="mean", zero_infinity=True)
    metrics_path = out / "metrics.jsonl"
    out.mkdir(parents=True, exist_ok=True)
    if saved is not None and ddp.main:
        _drop_records_after(metrics_path, state)

    def save_last():
        if not ddp.main:
            return
        checkpoint.save(
            last, model, alphabet, optimizer=optimizer.state_dict(), rng=torch.get_rng_state(),
            train_config=asdict(cfg), train_state=asdict(state),
        )

    # Ctrl-C and SIGTERM (a scheduler's kill, a closed terminal) stop the run with last.pt written. Inside
    # an optimizer step (forward, backward, update, counters) the signal only raises a flag, acted on
    # when the step is complete: stopping halfway would save weights, BatchNorm statistics and counters
    # that disagree, and the resumed run would drift from an unbroken one.
    stepping = [False]
    stop_signal = [False]

    def on_signal(signum, frame):
        if stepping[0]:
            stop_signal[0] = True
        else:
            raise KeyboardInterrupt

    in_main_thread = threading.current_thread() is threading.main_thread()  # signal() works only there
    previous_handlers = (
        {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)} if in_main_thread else {}
    )
    started = time.monotonic() - state.elapsed
    record: dict = {}
    stop_reason = None
    try:
        with bar(len(sampler), f"epoch {state.epoch + 1}", show_progress) as b:
            while state.epoch < cfg.epochs and stop_reason is None:
                model.train()
                if frozen is not None:
                    frozen.eval()  # frozen BatchNorm layers keep their running statistics too
                sampler.epoch = state.epoch
                sampler.skip = state.step_in_epoch
                b.reset(len(sampler), f"epoch {state.epoch + 1}")
                b.advance(state.step_in_epoch)
                loss_sum, lines, epoch_t0 = 0.0, 0, time.monotonic()
                for images, widths, targets, target_lengths, _ in loader:
                    stepping[0] = True
                    for group in optimizer.param_groups:
                        group["lr"] = cfg.lr * state.lr_scale * min(1.0, (state.step + 1) / cfg.warmup_steps)
                    with autocast:
                        log_probs, lengths = net(images.to(dev), widths.to(dev))
                    loss = ctc(log_probs.float(), targets.to(dev), lengths, target_lengths.to(dev))
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                    optimizer.step()
                    state.step += 1
                    state.step_in_epoch += 1
                    loss_sum += loss.item() * len(widths)
                    lines += len(widths)
                    speed = lines / max(time.monotonic() - epoch_t0, 1e-9)
                    b.advance(1, info=f"loss {loss_sum / lines:.3f}  {speed:.1f} lines/s")
                    state.elapsed = time.monotonic() - started
                    stepping[0] = False
                    if stop_signal[0]:
                        raise KeyboardInterrupt
                    if cfg.max_steps is not None and state.step >= cfg.max_steps:
                        stop_reason = "max_steps"
                    elif cfg.max_minutes is not None and state.elapsed >= cfg.max_minutes * 60:
                        stop_reason = "time budget"
                    if ddp.world > 1:
                        # Clocks differ between processes: all stop at the step where the first one would.
                        flag = torch.tensor([stop_reason is not None], dtype=torch.int32)
                        torch.distributed.all_reduce(flag, torch.distributed.ReduceOp.MAX)
                        stop_reason = stop_reason or ("time budget" if flag.item() else None)
                    if stop_reason:
                        break
                    if state.step % cfg.save_every == 0:
                        save_last()
                epoch_done = state.step_in_epoch >= len(sampler)  # even if a limit stopped it on its last batch
                loss_sum, lines = _all_sum([loss_sum, lines], ddp)
                if ddp.main:
                    record = _validate_and_log(
                        model, alphabet, validator, val_records, state, out, metrics_path,
                        loss_sum / max(lines, 1), lines / max(time.monotonic() - epoch_t0, 1e-9), cfg, epoch_done,
                    )
                    b.print(
                        f"epoch {record['epoch']}: loss {record['train_loss']:.3f}  val CER {record['val_cer']:.2%}  "
                        f"WER {record['val_wer']:.2%}  {record['train_lines_per_s']:.1f} lines/s",
                        log,
                    )
                if ddp.world > 1:
                    # Rank 0 alone validated: everyone takes its schedule and stopping decisions.
                    shared = [state]
                    torch.distributed.broadcast_object_list(shared, src=0)
                    state = shared[0]
                if epoch_done:
                    state.epoch += 1
                    state.step_in_epoch = 0
                    if state.bad_epochs >= cfg.patience:
                        stop_reason = f"no improvement for {cfg.patience} epochs"
                save_last()
        if ddp.world > 1:
            torch.distributed.barrier()  # leave together: no rank tears down the group while rank 0 still writes
    except KeyboardInterrupt:
        state.elapsed = time.monotonic() - started
        save_last()
        log(f"interrupted; resumable state saved to {last}")
        raise
    finally:
        for sig, handler in previous_handlers.items():
            signal.signal(sig, handler)
        if ddp.owns_group:
            # The DDP wrapper's reducer holds the group: release it first, or its threads may be
            # destroyed mid-use at exit ("terminate called without an active exception", seen rarely).
            del net
            torch.distributed.destroy_process_group()
    log(f"stopped ({stop_reason or 'all epochs done'}); best val CER {state.best_saved_cer:.2%}")
    return {**record, "stop_reason": stop_reason or "epochs", "best_val_cer": state.best_saved_cer}


RUN_FILES = ("last.pt", "best.pt", "metrics.jsonl")


def _ignore_interrupts(worker_id: int) -> None:
    """DataLoader workers leave Ctrl-C to the main process, which stops at a step boundary:
    a worker killed by the terminal's SIGINT would break the batch the last step needs."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


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
        raise HandwriteError(f"{out}: another training run is using this folder (process {holder}); "
                             "wait for it, stop it, or choose another folder") from None
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
        same_step = rec.get("step", 0) == state.step and (not rec.get("complete_epoch") or rec.get("epoch", 0) <= state.epoch)
        if done_before or same_step:
            keep.append(line)
    checkpoint.atomic_write(metrics_path, lambda f: f.write("".join(k + "\n" for k in keep).encode("utf-8")))


def _widened(pretrained: dict, fresh: dict) -> dict:
    """Pretrained weights with the output layer padded by the fresh model's rows for new characters."""
    weights = dict(pretrained)
    for name in ("head.weight", "head.bias"):
        rows = pretrained[name].shape[0]
        weights[name] = torch.cat([pretrained[name].to(fresh[name].dtype), fresh[name][rows:]])
    return weights


def _validate_and_log(model, alphabet, validator, val_records, state, out, metrics_path, loss, speed, cfg, epoch_done):
    ev = evaluate(validator, val_records)
    if ev.counts.cer < state.best_saved_cer:
        state.best_saved_cer = ev.counts.cer
        checkpoint.save(out / "best.pt", model, alphabet, train_config=asdict(cfg), val_cer=ev.counts.cer)
    # Only whole epochs move the schedule, so stopping and resuming mid-epoch changes nothing.
    if epoch_done:
        if ev.counts.cer < state.best_cer:
            state.best_cer, state.best_epoch, state.bad_epochs = ev.counts.cer, state.epoch, 0
        else:
            state.bad_epochs += 1
            if state.bad_epochs % cfg.lr_patience == 0:
                state.lr_scale *= 0.5
    record = {
        "epoch": state.epoch + 1,
        "complete_epoch": epoch_done,
        "step": state.step,
        "train_loss": loss,
        "val_cer": ev.counts.cer,
        "val_wer": ev.counts.wer,
        "lr": cfg.lr * state.lr_scale,
        "train_lines_per_s": speed,
        "elapsed_s": round(state.elapsed, 1),
    }
    with metrics_path.open("a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")
    return record
