"""The ``handwrite`` command: argument parsing and output formatting only.

Exit codes: 0 success; 1 the command ran but some inputs failed (an
unreadable image among many); 2 bad arguments or bad input; 130 interrupted.
"""

from __future__ import annotations

import functools
import json
import math
import os
import sys
from dataclasses import asdict, replace
from enum import Enum
from pathlib import Path
from typing import Optional

import typer

from .config import (
    ADAPT_STEPS,
    DEFAULT_GEOMETRY,
    GEOMETRIES,
    INFERENCE_BATCH,
    MAX_BEAM,
    PSEUDO_KEEP,
    DecoderSpec,
    ModelConfig,
    TrainConfig,
)
from .errors import (
    EXIT_INPUT,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_IO,
    EXIT_OK,
    EXIT_PARTIAL,
    HandwriteError,
    check_number,
)

# The defaults every option shows and uses: the settings objects' own (one source of truth).
_TRAIN, _MODEL, _SPEC = TrainConfig(), ModelConfig(), DecoderSpec()

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Offline handwritten text-line recognition: train, evaluate, transcribe.",
)


class Format(str, Enum):
    auto = "auto"
    iam = "iam"
    pairs = "pairs"
    tsv = "tsv"
    page = "page"
    alto = "alto"


Geometry = Enum("Geometry", {g: g for g in GEOMETRIES}, type=str)


class OutputFormat(str, Enum):
    text = "text"
    jsonl = "jsonl"
    page = "page"
    alto = "alto"


class ReportFormat(str, Enum):
    tsv = "tsv"
    json = "json"


def _fail(message: str, code: int = EXIT_INPUT):
    typer.echo(f"handwrite: error: {message}", err=True)
    raise typer.Exit(code)


def _user_errors(command):
    """User mistakes become one line on stderr and exit code 2; a file that cannot be written
    (disk full) one line and 74; a bug its traceback and 70 (never 1, which means partial success)."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except HandwriteError as e:
            _fail(str(e))
        except KeyboardInterrupt:
            _fail("interrupted", EXIT_INTERRUPTED)
        except BrokenPipeError:
            # The reader went away (`handwrite transcribe ... | head`): stop quietly, as cat does, with
            # the shell's code for a SIGPIPE death; stdout goes to /dev/null so the exit flush is silent.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise typer.Exit(128 + 13) from None
        except OSError as e:
            where = f"{e.filename}: " if e.filename else ""
            _fail(f"{where}{e.strerror or e}", EXIT_IO)
        except typer.Exit:
            raise
        except Exception:
            import traceback

            traceback.print_exc()
            _fail("internal error (a bug in handwrite; the traceback above says where)", EXIT_INTERNAL)

    return wrapper


def _json(value, **kwargs) -> str:
    """JSON without NaN or Infinity, which are not JSON: a non-finite number is written as null."""

    def clean(v):
        if isinstance(v, float) and not math.isfinite(v):
            return None
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [clean(x) for x in v]
        return v

    return json.dumps(clean(value), allow_nan=False, **kwargs)


def _output_file(path: Path | None) -> None:
    """Refuse an output path that is a folder before any work is done, not after."""
    if path is not None and path.is_dir():
        _fail(f"{path}: is a folder; give a file name to write to")


def _threads(n: int) -> None:
    import torch

    check_number("threads", n, 1, 1024, integer=True)
    torch.set_num_threads(n)


def _log(message: str) -> None:
    typer.echo(message, err=True)


def _read_data(paths, fmt, split, include_err=False, geometry=Geometry(DEFAULT_GEOMETRY)):
    """Records of one or more datasets; lines a page-file reader had to leave out are reported,
    one line each, and returned as a count (eval counts them as failed lines)."""
    from .datasets import ReadReport, load_dataset

    report = ReadReport()
    records = [r for d in paths for r in load_dataset(d, fmt.value, split, include_err, report, geometry.value)]
    for problem in report.problems:
        _log(f"handwrite: error: {problem}")
    if report.empty:
        _log(f"handwrite: {report.empty} lines without a transcription skipped")
    return records, len(report.problems)


def expand_inputs(inputs: list[str]) -> list[Path]:
    """Files, folders (searched recursively for images and PAGE/ALTO files) and glob patterns,
    in the given order; '-' stands for the paths on standard input, one a line (as `find ... -name
    '*.png' | handwrite transcribe -` gives them). A folder that holds page files yields those, not
    their page images.

    A name that matches nothing is kept as is, so it is reported as missing
    rather than silently dropped.
    """
    import glob

    from .imageio import IMAGE_SUFFIXES
    from .pagexml import xml_flavour

    if "-" in inputs:
        stdin_paths = [line.rstrip("\n") for line in sys.stdin if line.strip()]
        inputs = [p for item in inputs for p in (stdin_paths if item == "-" else [item])]
    paths: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            pages = sorted(q for q in p.rglob("*.xml") if xml_flavour(q) is not None)
            paths += pages or sorted(q for q in p.rglob("*") if q.suffix.lower() in IMAGE_SUFFIXES and q.is_file())
        elif not p.exists() and glob.has_magic(item):
            paths += sorted(Path(q) for q in glob.glob(item, recursive=True))
        else:
            paths.append(p)
    return paths


def _exit_code(failed: int, total: int) -> int:
    """Some inputs failed: partial success; all of them: nothing was produced."""
    return EXIT_OK if not failed else EXIT_INPUT if failed == total else EXIT_PARTIAL


ThreadsOpt = typer.Option(
    1,
    "--threads",
    help="torch intra-op threads. 1 is fastest on a shared or small machine (torch's threads spin-wait).",
)
FormatOpt = typer.Option(Format.auto, "--format", "-f", help="Dataset layout; auto detects it from the path.")


GeometryOpt = typer.Option(
    Geometry(DEFAULT_GEOMETRY),
    "--geometry",
    help="PAGE/ALTO: cut each line by its polygon (a band around its baseline where it has none), or by "
    "the baseline band first: for exports whose polygons cut descenders, such as Transkribus'.",
)


class Precision(str, Enum):
    fp32 = "fp32"
    bf16 = "bf16"


class Decoder(str, Enum):
    greedy = "greedy"
    beam = "beam"


# Decoding options: left unset, the settings saved beside the model by `lm tune` apply, else greedy.
DecoderOpt = typer.Option(None, "--decoder", help="greedy or beam (default: the model's saved settings, else greedy).")
LmOpt = typer.Option(
    None,
    "--lm",
    help="Character n-gram LM (from `handwrite lm build`); implies --decoder beam. Repeat it for one LM per "
    "language: each document (page, folder of lines) gets the one that finds its lines' greedy readings most likely.",
)
LexiconOpt = typer.Option(
    None,
    "--lexicon",
    help="Word list (one per line, plain or .gz); words outside it are not emitted unless given an OOV penalty "
    "(--oov-penalty; lm tune: --oov-penalties). Repeat it for one list per --lm, in the same order.",
)
BeamOpt = typer.Option(None, "--beam", help=f"Beam width (default {_SPEC.beam}, at most {MAX_BEAM}).")
LmWeightOpt = typer.Option(None, "--lm-weight", help=f"LM weight alpha (default {_SPEC.lm_weight}).")
BonusOpt = typer.Option(None, "--insertion-bonus", help=f"Per-character bonus beta (default {_SPEC.insertion_bonus}).")
OovOpt = typer.Option(None, "--oov-penalty", help="Allow words outside the lexicon at this log-penalty each.")
DensityOpt = typer.Option(
    None,
    "--max-density",
    help="Read again, stretched, the lines whose greedy reading has more characters per output frame than "
    "this (0: read each line once; default: the model's saved settings, else 0).",
)
InkOpt = typer.Option(
    None,
    "--min-ink-height",
    help="Crop above and below the lines whose ink (its central 90 %) fills less than this fraction of their "
    "height, to fill that much, before reading them (0: read lines as given; default: the model's saved "
    "settings, else 0).",
)
SlopeOpt = typer.Option(
    None,
    "--max-slope",
    help="Turn level the lines whose writing slopes more than this many degrees before reading them (0: read "
    "lines as given; default: the model's saved settings, else 0).",
)
MarginOpt = typer.Option(
    None,
    "--margin",
    help="Add this many line heights of paper at each end of a line before reading it (0: none; default: the "
    "model's saved settings, else 0).",
)
ReadAsOpt = typer.Option(
    None,
    "--read-as",
    help="Read a character the network writes as another, e.g. \"’='\" (repeatable; 'none': each as written; "
    "default: the model's saved settings).",
)
WorkersOpt = typer.Option(1, "--workers", help="Processes for beam search (the network runs in this one).")


def _read_as(values: Optional[list[str]]) -> Optional[dict[str, str]]:
    """--read-as values as DecoderSpec.read_as; None when none are given (the saved settings apply)."""
    if not values:
        return None
    if values == ["none"]:
        return {}
    for v in values:
        if len(v) != 3 or v[1] != "=":
            _fail(f"--read-as {v!r}: give a character, '=' and the one to read it as (e.g. \"’='\"), or none")
    return {v[0]: v[2] for v in values}


ModelOpt = typer.Option(
    None,
    "--model",
    "-m",
    show_default="the shipped default model",
    help="Model file: .pt from `handwrite train`, or .onnx from `handwrite export`.",
)


def _reading(max_density, min_ink_height, max_slope, margin, read_as) -> dict:
    """The reading flags (--max-density, --min-ink-height, --max-slope, --margin, --read-as) as handwrite.decoding's
    arguments; None where not given, so that the saved settings apply."""
    return dict(
        max_density=max_density,
        min_ink_height=min_ink_height,
        max_slope=max_slope,
        margin=margin,
        read_as=_read_as(read_as),
    )


def _search(lm, lexicon, beam, lm_weight, bonus, oov) -> dict:
    """The search flags (--lm, --lexicon, --beam, --lm-weight, --insertion-bonus, --oov-penalty) as
    handwrite.decoding's arguments."""
    return dict(lm=lm, lexicon=lexicon, beam=beam, lm_weight=lm_weight, insertion_bonus=bonus, oov_penalty=oov)


def _load_recognizer(model, device, batch_size, workers, threads, decoder, flags: dict):
    """The model bundle with its saved decoding under the flags (:func:`_search`, :func:`_reading`): what
    eval and transcribe share (the same handwrite.load a Python caller uses)."""
    from .bundle import load

    recognizer = load(
        model,
        device=device,
        threads=threads,
        batch_size=batch_size,
        workers=workers,
        decoder=decoder.value if decoder else None,
        **flags,
    )
    return recognizer.spec, recognizer


@app.command()
@_user_errors
def train(
    train_data: list[Path] = typer.Argument(
        ...,
        help="Training set(s): IAM root folder, folder of image + .gt.txt pairs, TSV manifest, or PAGE/ALTO files; "
        "several are joined.",
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder for best.pt, last.pt and metrics.jsonl."),
    val: Optional[Path] = typer.Option(
        None, "--val", help="Validation set (default: each TRAIN_DATA, with --val-split)."
    ),
    train_split: Optional[str] = typer.Option(
        None, "--train-split", help="Split name (e.g. train) or list file selecting training lines."
    ),
    val_split: Optional[str] = typer.Option(
        None, "--val-split", help="Split name (e.g. validation) or list file selecting validation lines."
    ),
    fmt: Format = FormatOpt,
    geometry: Geometry = GeometryOpt,
    include_err: bool = typer.Option(False, "--include-err", help="IAM: also use lines marked 'err'."),
    epochs: int = typer.Option(_TRAIN.epochs, help="Maximum number of epochs."),
    max_minutes: Optional[float] = typer.Option(
        None, "--max-minutes", help="Wall-clock budget; training stops cleanly when it is spent."
    ),
    max_steps: Optional[int] = typer.Option(None, "--max-steps", help="Stop after this many optimizer steps in all."),
    batch_size: int = typer.Option(_TRAIN.batch_size, "--batch-size", "-b"),
    lr: float = typer.Option(_TRAIN.lr, "--lr", help="Peak learning rate (AdamW)."),
    warmup_steps: int = typer.Option(
        _TRAIN.warmup_steps, "--warmup-steps", help="Steps of linear learning-rate warm-up."
    ),
    shortcut_weight: float = typer.Option(
        _TRAIN.shortcut_weight,
        "--shortcut-weight",
        help="Weight of a training-only CTC head on the CNN features (0.1 in Retsinas et al. 2022; 0: none).",
    ),
    freeze: str = typer.Option(
        _TRAIN.freeze, "--freeze", help="'cnn': train only the LSTM and output layers (fine-tuning on few lines)."
    ),
    patience: int = typer.Option(_TRAIN.patience, help="Stop after this many epochs without a better validation CER."),
    lr_patience: int = typer.Option(
        _TRAIN.lr_patience,
        "--lr-patience",
        help="Halve the learning rate after this many epochs without a better validation CER "
        "(raise it when epochs are a few steps, as when adapting to a few corrected lines).",
    ),
    schedule: str = typer.Option(
        _TRAIN.schedule,
        "--schedule",
        help="plateau: halve the rate as above; cosine: lower it from its peak to zero at --max-steps "
        "(a last stretch of training, from --init weights).",
    ),
    augment: bool = typer.Option(
        _TRAIN.augment, "--augment/--no-augment", help="Random distortions of training images."
    ),
    height: int = typer.Option(_MODEL.height, help="Line height in pixels the model reads."),
    lstm_hidden: int = typer.Option(_MODEL.lstm_hidden, "--lstm-hidden"),
    lstm_layers: int = typer.Option(_MODEL.lstm_layers, "--lstm-layers"),
    cell: str = typer.Option(_MODEL.cell, "--cell", help="Recurrent layers: lstm or gru."),
    channels: str = typer.Option(
        ",".join(map(str, _MODEL.channels)),
        "--channels",
        help="Channels of the conv blocks, comma-separated; each block halves the height.",
    ),
    width_pools: int = typer.Option(
        _MODEL.width_pools, "--width-pools", help="How many of the first conv blocks also halve the width."
    ),
    dropout: float = typer.Option(_MODEL.dropout, "--dropout"),
    seed: int = typer.Option(_TRAIN.seed),
    workers: int = typer.Option(
        _TRAIN.workers,
        help="Processes preparing batches beside the training loop (0: none); more than 1 also read the images in parallel.",
    ),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out from its last.pt."),
    init: Optional[Path] = typer.Option(
        None,
        "--init",
        help="Start from this model's weights (fine-tuning); its architecture and height are kept, new characters added.",
    ),
    add_layers: int = typer.Option(
        _TRAIN.add_layers,
        "--add-layers",
        help="With --init: stack this many residual recurrent layers on its network; they start out adding "
        "nothing, so training starts from the model as it reads.",
    ),
    device: str = typer.Option(
        "auto",
        "--device",
        help="cpu, cuda or auto (cuda when available). Under torchrun each process takes its LOCAL_RANK's GPU.",
    ),
    precision: Precision = typer.Option(
        Precision.fp32,
        "--precision",
        help="bf16: autocast to bfloat16 on CUDA or CPU (CTC loss in fp32); pays on CPUs with AVX-512 bf16 or AMX.",
    ),
    max_slope: float = typer.Option(
        _TRAIN.max_slope,
        "--max-slope",
        help="Turn level the training and validation lines whose writing slopes more than this many degrees, as "
        "`transcribe --max-slope` reads them (0: as given). `adapt` uses the starting model's setting.",
    ),
    min_ink_height: float = typer.Option(
        _TRAIN.min_ink_height,
        "--min-ink-height",
        help="Crop the training and validation lines whose ink fills less than this fraction of their height, as "
        "`transcribe --min-ink-height` reads them (0: as given). `adapt` uses the starting model's setting.",
    ),
    margin: float = typer.Option(
        _TRAIN.margin,
        "--margin",
        help="Add this many line heights of paper at each end of the training and validation lines, as "
        "`transcribe --margin` reads them (0: none). `adapt` uses the starting model's setting.",
    ),
    keep_epochs: bool = typer.Option(
        False,
        "--keep-epochs",
        help="Also save each epoch's weights as epoch-N.pt, to average the last few (`handwrite average`).",
    ),
    threads: int = ThreadsOpt,
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar or log lines."),
):
    """Train a model (or resume training) and keep the one with the best validation CER."""
    from . import training

    _threads(threads)
    if val is None and val_split is None:
        _fail("give a validation set with --val and/or --val-split")
    if out.exists() and not out.is_dir():
        _fail(f"{out}: not a folder (the run's files go into --out DIR)")
    # Settings first: a bad number is refused before minutes of reading images.
    try:
        channel_list = [int(c) for c in channels.split(",")]
    except ValueError:
        _fail(f"--channels takes comma-separated integers (got {channels!r})")
    model_cfg = ModelConfig(
        height=height,
        channels=channel_list,
        width_pools=width_pools,
        lstm_hidden=lstm_hidden,
        lstm_layers=lstm_layers,
        cell=cell,
        dropout=dropout,
    )
    cfg = TrainConfig(
        epochs=epochs,
        max_minutes=max_minutes,
        max_steps=max_steps,
        batch_size=batch_size,
        lr=lr,
        patience=patience,
        lr_patience=lr_patience,
        schedule=schedule,
        augment=augment,
        seed=seed,
        workers=workers,
        init_from=str(init) if init else None,
        add_layers=add_layers,
        precision=precision.value,
        warmup_steps=warmup_steps,
        freeze=freeze,
        shortcut_weight=shortcut_weight,
        keep_epochs=keep_epochs,
        max_slope=max_slope,
        min_ink_height=min_ink_height,
        margin=margin,
    )
    train_records, _ = _read_data(train_data, fmt, train_split, include_err, geometry)
    val_records, _ = _read_data([val] if val else train_data, fmt, val_split, include_err, geometry)
    result = training.train(
        train_records,
        val_records,
        out,
        model_cfg,
        cfg,
        resume=resume,
        show_progress=not quiet,
        log=(lambda m: None) if quiet else _log,
        device=device,
    )
    if os.environ.get("RANK", "0") == "0":  # under torchrun, one summary, not one per process
        typer.echo(_json(result))


@app.command()
@_user_errors
def adapt(
    data: Optional[list[Path]] = typer.Argument(
        None, help="Corrected lines of your hand, in any layout `train` reads; several are joined."
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder for best.pt (the adapted model) and the run."),
    model: Optional[Path] = typer.Option(
        None, "--model", "-m", show_default="the shipped model's model.pt", help="Model to adapt (.pt)."
    ),
    split: Optional[str] = typer.Option(None, "--split", help="Split name or list file selecting the lines."),
    fmt: Format = FormatOpt,
    geometry: Geometry = GeometryOpt,
    uncorrected: Optional[list[str]] = typer.Option(
        None,
        "--uncorrected",
        "-u",
        help="Uncorrected lines of the same hand (line images, PAGE/ALTO files, folders, globs; '-' reads paths from standard input): the starting model reads them, and its surest readings are trained on instead of corrections (self-training).",
    ),
    keep: float = typer.Option(
        PSEUDO_KEEP, "--keep", help="Share of the readings of --uncorrected lines trained on, the surest first."
    ),
    steps: int = typer.Option(ADAPT_STEPS, "--steps", help="Training steps (batch 8); 2-5 CPU-minutes at the default."),
    seed: int = typer.Option(_TRAIN.seed, "--seed", help="Draws the augmentation and the order of the lines."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out from its last.pt."),
    device: str = typer.Option("auto", "--device", help="cpu, cuda or auto (cuda when available)."),
    threads: int = ThreadsOpt,
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar or log lines."),
):
    """Fine-tune a model on a few corrected lines of one hand (16 to a few hundred), or on its own
    surest readings of uncorrected ones (--uncorrected): the measured recipes of the README's "Adapting
    the model to your hand". Transcribe with `-m OUT/best.pt` afterwards."""
    from . import training
    from .pseudolabels import unlabelled_lines

    _threads(threads)
    if out.exists() and not out.is_dir():
        _fail(f"{out}: not a folder (the run's files go into --out DIR)")
    if not data and not uncorrected:
        _fail("no lines to adapt to: give corrected lines (DATA) or --uncorrected lines")
    if keep != PSEUDO_KEEP and not uncorrected:
        _fail("--keep chooses among the readings of --uncorrected lines; without them it means nothing")
    check_number("steps", steps, 1, None, integer=True)
    records = _read_data(data, fmt, split, False, geometry)[0] if data else []
    plain = []
    if uncorrected:
        paths = expand_inputs(uncorrected)
        for p in paths:
            if not p.exists():
                _fail(f"{p}: no such file or folder")
        plain, problems = unlabelled_lines(paths, geometry.value)
        for problem in problems:
            _log(f"handwrite: error: {problem}")
        if not plain:
            _fail("no uncorrected lines found in " + " ".join(uncorrected))
    result = training.adapt(
        records,
        out,
        model,
        steps,
        resume=resume,
        show_progress=not quiet,
        log=(lambda m: None) if quiet else _log,
        device=device,
        uncorrected=plain,
        keep=keep,
        seed=seed,
    )
    typer.echo(_json(result))


@app.command("eval")
@_user_errors
def evaluate(
    model: Optional[list[Path]] = typer.Option(
        None,
        "--model",
        "-m",
        show_default="the shipped default model",
        help="Model file (.pt or .onnx); repeat to compare several models on the same lines.",
    ),
    data: Path = typer.Argument(
        ..., help="Dataset: IAM root folder, folder of image + .gt.txt pairs, TSV manifest, or PAGE/ALTO files."
    ),
    split: Optional[str] = typer.Option(None, "--split", help="Split name (e.g. test) or list file."),
    fmt: Format = FormatOpt,
    geometry: Geometry = GeometryOpt,
    include_err: bool = typer.Option(False, "--include-err", help="IAM: also evaluate lines marked 'err'."),
    report: Optional[Path] = typer.Option(
        None, "--report", help="Write a per-line report (id, reference, hypothesis, CER) here."
    ),
    report_format: ReportFormat = typer.Option(ReportFormat.tsv, "--report-format"),
    html_out: Optional[Path] = typer.Option(
        None, "--html", help="Write an HTML report here: every line's image, reference and reading, differences marked."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as one JSON object (one per model)."),
    batch_size: int = typer.Option(INFERENCE_BATCH, "--batch-size", "-b"),
    device: str = typer.Option("cpu", "--device", help="cpu or cuda."),
    decoder: Optional[Decoder] = DecoderOpt,
    lm: Optional[list[Path]] = LmOpt,
    lexicon: Optional[list[Path]] = LexiconOpt,
    beam: Optional[int] = BeamOpt,
    lm_weight: Optional[float] = LmWeightOpt,
    bonus: Optional[float] = BonusOpt,
    oov: Optional[float] = OovOpt,
    density: Optional[float] = DensityOpt,
    ink: Optional[float] = InkOpt,
    slope: Optional[float] = SlopeOpt,
    margin: Optional[float] = MarginOpt,
    read_as: Optional[list[str]] = ReadAsOpt,
    workers: int = WorkersOpt,
    threads: int = ThreadsOpt,
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
):
    """Character and word error rates of MODEL on a dataset (several models: one comparison table).

    Besides CER and WER: CER on grapheme clusters with a bootstrap 95 % confidence interval,
    case- and punctuation-insensitive CER, WER on Unicode words, bag-of-words error, insertions,
    deletions and substitutions, the most frequent confusions, CER by tenth of the line and per-page figures."""
    import time

    from .atomic import atomic_write
    from .metrics import ErrorCounts, Evaluation, analyse
    from .metrics import evaluate as run_eval
    from .progress import bar

    models = model or [None]
    if len(models) > 1 and (report or html_out):
        _fail("--report and --html describe one model; give one --model with them")
    _output_file(report)
    _output_file(html_out)
    records, unread = _read_data([data], fmt, split, include_err, geometry)
    rows, failed = [], 0
    for m in models:
        flags = {**_search(lm, lexicon, beam, lm_weight, bonus, oov), **_reading(density, ink, slope, margin, read_as)}
        spec, recognizer = _load_recognizer(m, device, batch_size, workers, threads, decoder, flags)
        t0 = time.monotonic()
        ev = Evaluation(ErrorCounts(), [])
        try:
            with bar(len(records), "evaluating", not quiet) as b:
                run_eval(recognizer, records, b.advance, into=ev)
        except Exception:
            # A bug part-way: the figures of the lines done so far are still worth having, marked partial.
            typer.echo(_json({"model": str(m or "default"), "partial": True, **ev.summary()}, ensure_ascii=False))
            raise
        seconds = time.monotonic() - t0
        details = analyse(ev.lines, [r.document for r in records])
        summary = {
            "model": str(m or "default"),
            **ev.summary(),
            "decoder": spec.decoder,
            "lines_per_s": round(len(records) / max(seconds, 1e-9), 1),
            **details,
        }
        rows.append(summary)
        failed = max(failed, ev.failed)
        if as_json:
            typer.echo(_json(summary, ensure_ascii=False))
        elif len(models) == 1:
            lo, hi = summary["cer_graphemes_ci95"]
            typer.echo(f"lines\t{summary['lines']}")
            typer.echo(f"CER\t{summary['cer']:.2%}\t({summary['char_errors']}/{summary['chars']})")
            typer.echo(f"CER graphemes\t{summary['cer_graphemes']:.2%}\t(95% CI {lo:.2%}-{hi:.2%})")
            typer.echo(f"CER case-insensitive\t{summary['cer_case_insensitive']:.2%}")
            typer.echo(f"CER without punctuation\t{summary['cer_no_punctuation']:.2%}")
            typer.echo(f"WER\t{summary['wer']:.2%}\t({summary['word_errors']}/{summary['words']})")
            typer.echo(f"bag-of-words error\t{summary['bow_error_rate']:.2%}")
            typer.echo(f"sub/del/ins\t{summary['substitutions']}/{summary['deletions']}/{summary['insertions']}")
            tenths = " ".join(f"{r:.1%}" for r in summary["cer_by_position"])
            typer.echo(f"CER by tenth of the line\t{tenths}")
            top = ", ".join(
                f"{c['reference'] or '∅'}→{c['hypothesis'] or '∅'} {c['count']}" for c in summary["confusions"][:5]
            )
            typer.echo(f"top confusions\t{top or '-'}")
            unknown = "".join(summary["unknown_chars"]) or "-"
            typer.echo(f"unknown characters\t{sum(summary['unknown_chars'].values())}\t{unknown}")
            if ev.failed:
                typer.echo(f"unreadable images\t{ev.failed}")
        for line in ev.lines:
            if line.error and len(models) == 1:
                _log(f"handwrite: error: {line.error}")
    if len(models) > 1 and not as_json:
        typer.echo("model\tdecoder\tCER\t95% CI\tWER\tlines/s")
        for r in rows:
            lo, hi = r["cer_graphemes_ci95"]
            typer.echo(
                f"{r['model']}\t{r['decoder']}\t{r['cer']:.2%}\t{lo:.2%}-{hi:.2%}\t{r['wer']:.2%}\t{r['lines_per_s']}"
            )
    # After the summary is out: a disk-full report still leaves the figures on the screen.
    if report is not None:
        atomic_write(report, lambda f: f.write(_report(ev, report_format).encode("utf-8")))
    if html_out is not None:
        from .report import html_report

        page = html_report(ev, records, details, f"handwrite eval: {data}" + (f" ({split})" if split else ""))
        atomic_write(html_out, lambda f: f.writelines(piece.encode("utf-8") for piece in page))
    raise typer.Exit(_exit_code(failed + unread, len(records) + unread))


def _report(ev, fmt: ReportFormat) -> str:
    if fmt is ReportFormat.json:
        rows = [line.__dict__ for line in ev.lines]
        return _json({"summary": ev.summary(), "lines": rows}, ensure_ascii=False, indent=1) + "\n"
    out = ["id\treference\thypothesis\tcer"]
    for line in ev.lines:
        hyp = line.hypothesis if line.error is None else f"<error: {line.error}>"
        out.append(f"{line.id}\t{line.reference}\t{hyp}\t{line.cer:.4f}")
    return "\n".join(out) + "\n"


@app.command()
@_user_errors
def transcribe(
    model: Optional[Path] = ModelOpt,
    images: list[str] = typer.Argument(
        ...,
        help="Line images and/or PAGE/ALTO files: files, folders or glob patterns; '-' reads paths from standard input.",
    ),
    output: OutputFormat = typer.Option(
        OutputFormat.text,
        "--output",
        help="text: 'path<TAB>text' lines; jsonl: one JSON object per line, with confidence; page / alto: one XML file per line image, in --out DIR.",
    ),
    out: Optional[Path] = typer.Option(
        None,
        "--out",
        "-o",
        help="text/jsonl: write the results to this file (atomically) instead of standard output. With PAGE/ALTO inputs or --output page|alto: the folder to write the XML files into.",
    ),
    in_place: bool = typer.Option(
        False,
        "--in-place",
        help="Write the results into the given PAGE/ALTO files themselves (atomically) instead of copies in --out.",
    ),
    geometry: Geometry = GeometryOpt,
    batch_size: int = typer.Option(INFERENCE_BATCH, "--batch-size", "-b"),
    device: str = typer.Option("cpu", "--device", help="cpu or cuda."),
    decoder: Optional[Decoder] = DecoderOpt,
    lm: Optional[list[Path]] = LmOpt,
    lexicon: Optional[list[Path]] = LexiconOpt,
    beam: Optional[int] = BeamOpt,
    lm_weight: Optional[float] = LmWeightOpt,
    bonus: Optional[float] = BonusOpt,
    oov: Optional[float] = OovOpt,
    density: Optional[float] = DensityOpt,
    ink: Optional[float] = InkOpt,
    slope: Optional[float] = SlopeOpt,
    margin: Optional[float] = MarginOpt,
    read_as: Optional[list[str]] = ReadAsOpt,
    workers: int = WorkersOpt,
    threads: int = ThreadsOpt,
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
):
    """Transcribe line images, and the text lines of PAGE XML / ALTO files; one output line per text line.

    A PAGE or ALTO file is read with its page image, every line is recognised, and a copy of the
    file with the text, confidences, words and glyphs written in goes to --out DIR (or over the
    input with --in-place)."""
    from .atomic import atomic_write
    from .pagexml import xml_flavour
    from .progress import bar
    from .recognize import line_document, transcribe_page

    paths = expand_inputs(images)
    if not paths:
        _fail("no images found in " + " ".join(images))
    pages = [p for p in paths if p.suffix.lower() == ".xml"]
    for p in pages:
        if p.is_file() and xml_flavour(p) is None:
            _fail(f"{p}: neither PAGE XML nor ALTO")
    lines = [p for p in paths if p.suffix.lower() != ".xml"]
    xml_out = output in (OutputFormat.page, OutputFormat.alto)
    if (pages and not in_place or xml_out) and out is None:
        _fail("PAGE/ALTO results need a folder to go to: give --out DIR" + (" (or --in-place)" if pages else ""))
    if out is not None and (pages or xml_out) and out.exists() and not out.is_dir():
        _fail(f"{out}: not a folder (PAGE/ALTO files are written into --out DIR)")
    if not (pages or xml_out):
        _output_file(out)
    targets = [p if in_place else out / p.name for p in pages] + (
        [out / f"{p.stem}.xml" for p in lines] if xml_out else []
    )
    if len(set(targets)) < len(targets):
        _fail("two inputs would be written to the same file in --out; give them distinct names or separate runs")
    if not in_place and any(t.resolve() == p.resolve() for t, p in zip(targets, pages) if p.exists()):
        _fail("--out is the input folder: the inputs would be overwritten; pass --in-place if that is meant")
    flags = {**_search(lm, lexicon, beam, lm_weight, bonus, oov), **_reading(density, ink, slope, margin, read_as)}
    spec, recognizer = _load_recognizer(model, device, batch_size, workers, threads, decoder, flags)
    rows: list[str] = []
    counts = {"lines": 0, "failed": 0}

    def emit(r):
        """One result out as soon as it is known (so a crash later loses none of it), or kept for --out."""
        counts["lines"] += 1
        if r.error:
            counts["failed"] += 1
            _log(f"handwrite: error: {r.error}")
        if output is OutputFormat.jsonl:
            row = _json(
                {"path": str(r.path), "text": r.text, "confidence": r.confidence, "error": r.error}, ensure_ascii=False
            )
        elif r.error is None:
            row = f"{r.path}\t{r.text}"
        else:
            return
        if out is None or pages or xml_out:
            typer.echo(row)
        else:
            rows.append(row)

    unread = 0  # pages and page lines that could not be read at all
    with bar(len(paths), "transcribing", not quiet and len(paths) > 1) as b:
        for xml, target in zip(pages, targets):
            try:
                page = transcribe_page(recognizer, xml, geometry=geometry.value)
            except HandwriteError as e:
                _log(f"handwrite: error: {e}")
                unread += 1
                b.advance(1)
                continue
            for problem in page.problems:
                _log(f"handwrite: error: {problem}")
            unread += len(page.problems)
            if page.document is not None:
                atomic_write(target, lambda f, d=page.document: f.write(d))
            for r in page.lines:
                emit(r)
            b.advance(1)
        line_targets = iter(targets[len(pages) :])
        # Line images of one folder are taken to be one document (one LM for all of them).
        folders = [p.parent for p in lines]
        for r in recognizer.iter_transcribe(lines, b.advance, positions=xml_out, documents=folders):
            emit(r)
            if xml_out:
                target = next(line_targets)
                if r.error is None:
                    atomic_write(target, lambda f, d=line_document(r, output.value): f.write(d))
    if out is not None and not (pages or xml_out):
        atomic_write(out, lambda f: f.write("".join(row + "\n" for row in rows).encode("utf-8")))
    failed = unread + counts["failed"]
    raise typer.Exit(_exit_code(failed, unread + counts["lines"]))


class ExportFormat(str, Enum):
    onnx = "onnx"
    torchscript = "torchscript"


@app.command("export")
@_user_errors
def export_model(
    model: Path = typer.Argument(..., help="Model file (.pt) to export."),
    fmt: ExportFormat = typer.Option(
        ExportFormat.onnx, "--format", "-f", help="onnx (onnxruntime and others) or torchscript (libtorch, C++)."
    ),
    out: Optional[Path] = typer.Option(
        None, "--out", "-o", help="Output file (default: beside MODEL, .onnx / .int8.onnx / .ts.pt)."
    ),
    quantize: bool = typer.Option(
        False,
        "--quantize",
        help="ONNX only: int8 weights for the LSTM and linear layers (onnxruntime dynamic quantization).",
    ),
):
    """Export a model for deployment; its outputs are checked against PyTorch's before it is kept.

    `eval` and `transcribe` accept the .onnx files too (-m model.onnx)."""
    from .export import export

    _threads(1)
    _output_file(out)
    report = export(model, out, fmt.value, quantize)
    typer.echo(_json(asdict(report)))


@app.command()
@_user_errors
def average(
    models: list[Path] = typer.Argument(
        ..., help="Two or more checkpoints of one network, e.g. a run's last epochs (train --keep-epochs)."
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Model file to write."),
):
    """Average the weights of several checkpoints of one network (usually the last 3 epochs of a run):
    often better than any one of them. Evaluate the result before shipping it."""
    from . import checkpoint

    _threads(1)
    _output_file(out)
    model, alphabet, extra = checkpoint.average(models)
    checkpoint.save(out, model, alphabet, **extra, averaged_from=[str(m) for m in models])
    typer.echo(_json({"out": str(out), "averaged": [str(m) for m in models]}))


@app.command()
@_user_errors
def plot(
    runs: list[Path] = typer.Argument(
        ..., help="Training run folders (each with its metrics.jsonl); several share one figure."
    ),
    out: Path = typer.Option(..., "--out", "-o", help="PNG file to write."),
):
    """Draw training curves (loss, validation CER, learning rate against steps and time) as a PNG."""
    from .report import plot_runs

    _output_file(out)
    plot_runs(runs, out)
    typer.echo(_json({"out": str(out), "runs": [str(r) for r in runs]}))


lm_app = typer.Typer(no_args_is_help=True, help="Character n-gram language models for beam-search decoding.")
app.add_typer(lm_app, name="lm")


@lm_app.command("build")
@_user_errors
def lm_build(
    sources: list[Path] = typer.Argument(
        ..., help="Plain UTF-8 text files (one line each) and/or datasets whose transcriptions to use."
    ),
    out: Path = typer.Option(..., "--out", "-o", help="ARPA file to write (.gz compresses it)."),
    order: int = typer.Option(6, "--order", "-n", help="n-gram order (characters)."),
    split: Optional[str] = typer.Option(
        None, "--split", help="For datasets: the split whose transcriptions to use (e.g. train)."
    ),
    fmt: Format = FormatOpt,
    lexicon_out: Optional[Path] = typer.Option(
        None, "--lexicon-out", help="Also write the words of the text here, one per line (gzipped if it ends in .gz)."
    ),
    alphabet_of: Optional[Path] = typer.Option(
        None,
        "--alphabet-of",
        help="Give every character this model writes a probability, even those the text lacks (an English LM "
        "for a model that also writes French accents).",
    ),
):
    """Build a character n-gram LM (interpolated Kneser-Ney) from text."""
    import time

    from .bundle import model_path, network
    from .datasets import read_texts
    from .decoding import Lexicon
    from .lm import build_arpa, write_arpa

    _output_file(out)
    _output_file(lexicon_out)
    check_number("order", order, 1, 20, integer=True)
    t0 = time.monotonic()
    chars = network(model_path(alphabet_of))[1].chars if alphabet_of else ()
    lines = read_texts(sources, fmt.value, split)
    write_arpa(out, build_arpa(lines, order, chars))
    summary = {
        "lm": str(out),
        "order": order,
        "lines": len(lines),
        "bytes": out.stat().st_size,
        "seconds": round(time.monotonic() - t0, 2),
    }
    if lexicon_out is not None:
        lexicon = Lexicon.from_texts(lines)
        lexicon.save(lexicon_out)
        summary["lexicon_words"] = len(lexicon.words)
    typer.echo(_json(summary, ensure_ascii=False))


@lm_app.command("compile")
@_user_errors
def lm_compile(
    arpa: Path = typer.Argument(
        ...,
        help="ARPA character LM (plain or .gz), e.g. from `handwrite lm build`, or a compiled one of an older format.",
    ),
    out: Path = typer.Option(
        ..., "--out", "-o", help="Compiled LM to write (.npz): same model, loads about 8x faster."
    ),
):
    """Compile an ARPA LM into handwrite's binary form (numpy arrays; loads without running code)."""
    import time

    _output_file(out)
    from .lm import CharLM

    t0 = time.monotonic()
    CharLM.load(arpa).save_compiled(out)
    t1 = time.monotonic()
    CharLM.load(out)
    summary = {
        "lm": str(out),
        "bytes": out.stat().st_size,
        "compile_s": round(t1 - t0, 2),
        "load_s": round(time.monotonic() - t1, 3),
    }
    typer.echo(_json(summary))


@lm_app.command("perplexity")
@_user_errors
def lm_perplexity(
    lm: Path = typer.Argument(..., help="LM file (ARPA or compiled)."),
    sources: list[Path] = typer.Argument(..., help="Text files (one line each) and/or datasets to score."),
    split: Optional[str] = typer.Option(None, "--split", help="For datasets: the split whose transcriptions to score."),
    fmt: Format = FormatOpt,
):
    """Per-character perplexity of an LM on text (lower: the text is more what the LM expects)."""
    from .datasets import read_texts
    from .lm import CharLM

    lines = read_texts(sources, fmt.value, split)
    typer.echo(_json({"lm": str(lm), "lines": len(lines), "perplexity": round(CharLM.load(lm).perplexity(lines), 3)}))


@lm_app.command("tune")
@_user_errors
def lm_tune(
    model: Optional[Path] = ModelOpt,
    data: list[Path] = typer.Argument(..., help="Validation dataset(s); several are joined."),
    lm: list[Path] = typer.Option(
        ..., "--lm", help="LM to tune the weights of (repeat it for one per language, as in eval)."
    ),
    split: Optional[str] = typer.Option(None, "--split", help="Split name (e.g. validation) or list file."),
    fmt: Format = FormatOpt,
    lexicon: Optional[list[Path]] = LexiconOpt,
    penalties: Optional[str] = typer.Option(
        None,
        "--oov-penalties",
        help="With --lexicon: OOV penalties to try, comma-separated (one for all LMs; default: none, words "
        "outside the lexicon are not emitted).",
    ),
    beam: int = typer.Option(_SPEC.beam, "--beam", help=f"Beam width (at most {MAX_BEAM})."),
    max_density: Optional[float] = DensityOpt,
    min_ink_height: Optional[float] = InkOpt,
    max_slope: Optional[float] = SlopeOpt,
    margin: Optional[float] = MarginOpt,
    read_as: Optional[list[str]] = ReadAsOpt,
    weights: str = typer.Option("0.25,0.5,0.75,1.0,1.5", "--weights", help="LM weights to try, comma-separated."),
    bonuses: str = typer.Option("0,1,2", "--bonuses", help="Insertion bonuses to try, comma-separated."),
    save: bool = typer.Option(
        True, "--save/--no-save", help="Save the best settings beside the model, where transcribe and eval find them."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the grid as JSON lines."),
    threads: int = ThreadsOpt,
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
):
    """Grid-search the LM weight and insertion bonus (and with a lexicon, the OOV penalty) on a validation
    set; keep the lowest CER. With several LMs, each keeps the weights that read best the lines it decodes."""
    from .bundle import decoding, load, model_path
    from .decoding import best_setting, save_spec, tune_decoder
    from .metrics import ErrorCounts
    from .progress import bar

    try:
        grid_w = [float(x) for x in weights.split(",")]
        grid_b = [float(x) for x in bonuses.split(",")]
        grid_p = [float(x) for x in penalties.split(",")] if penalties else [None]
    except ValueError:
        _fail("--weights, --bonuses and --oov-penalties take comma-separated numbers")
    if penalties and not lexicon:
        _fail("--oov-penalties needs a --lexicon (without one, every word is free)")
    model = model_path(model)
    reading = decoding(
        model, **_reading(max_density, min_ink_height, max_slope, margin, read_as)
    ).reading()  # kept as saved
    base = replace(
        reading,
        decoder="beam",
        lm=[str(f) for f in lm],
        lexicon=[str(f) for f in lexicon or []],
        beam=beam,
        oov_penalty=grid_p[0],
    )
    # The network only (greedy): tuning runs its own searches.
    recognizer = load(model, threads=threads, spec=reading)
    records, _ = _read_data(data, fmt, split)
    with bar(len(grid_p) * len(grid_w) * len(grid_b), "tuning", not quiet) as b:
        rows = tune_decoder(recognizer, records, base, grid_w, grid_b, b.advance, grid_p)
    for row in rows:
        if as_json:
            typer.echo(_json(row))
        else:
            w = "-" if row["lm_weight"] is None else row["lm_weight"]
            bonus = "-" if row["insertion_bonus"] is None else row["insertion_bonus"]
            oov = f"\toov={row['oov_penalty']}" if penalties and row["decoder"] == "beam" else ""
            own = "".join(
                f"\tCER {ErrorCounts(**p).cer:.2%} of LM {i + 1}'s lines" for i, p in enumerate(row.get("per_lm", []))
            )
            typer.echo(
                f"{row['decoder']}\talpha={w}\tbeta={bonus}{oov}\tCER {row['cer']:.2%}\tWER {row['wer']:.2%}{own}"
            )
    best, spec = best_setting(rows, base)
    if save:
        path = save_spec(model, spec)
        what = f"alpha={spec.lm_weight} beta={spec.insertion_bonus}" + (f" oov={spec.oov_penalty}" if penalties else "")
        if spec.decoder == "greedy":
            what = "greedy, no setting of this LM beat it"
        _log(f"best: {what} (CER {best['cer']:.2%}); saved to {path}")


@app.command()
@_user_errors
def synth(
    out: Path = typer.Argument(..., help="Folder to write the IAM-layout dataset into (new or empty)."),
    lines: int = typer.Option(..., "--lines", "-n", help="Number of lines to draw."),
    seed: int = typer.Option(0, "--seed", help="Same seed (any --workers): byte-identical lines.txt."),
    fonts: Optional[list[Path]] = typer.Option(
        None, "--fonts", help="Extra .ttf/.otf files or folders of them (repeatable)."
    ),
    builtin_fonts: bool = typer.Option(
        True, "--builtin-fonts/--no-builtin-fonts", help="Use the handwriting fonts installed with handwrite."
    ),
    text: Optional[list[Path]] = typer.Option(
        None,
        "--text",
        help="Text to draw lines from: UTF-8 files (.gz too) or datasets, whose transcriptions are used (repeatable; default: the shipped English letters corpus).",
    ),
    text_split: Optional[str] = typer.Option(
        None, "--text-split", help="For --text datasets: the split whose transcriptions to use (e.g. train)."
    ),
    height: int = typer.Option(64, "--height", help="Height of the written line images in pixels."),
    workers: int = typer.Option(1, "--workers", "-w", help="Processes drawing lines."),
    crop_effects: bool = typer.Option(
        False,
        "--crop-effects",
        help="Draw lines as crops of written pages: strokes of the lines above and below, a line polygon's flat fill, show-through, rulings, pencil.",
    ),
    sheet: Optional[Path] = typer.Option(
        None, "--sheet", help="Also write a contact sheet (PNG) of the first 16 lines here."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
):
    """Draw synthetic handwritten lines with handwriting fonts, as a dataset in the IAM line layout."""
    import time

    from .datasets import read_iam
    from .progress import bar
    from .synth import builtin_font_paths, contact_sheet, find_fonts, load_font, read_corpus, synthesize

    _output_file(sheet)
    check_number("workers", workers, 1, 256, integer=True)
    paths = (builtin_font_paths() if builtin_fonts else []) + find_fonts(fonts or [])
    loaded = [load_font(p) for p in paths]
    corpus = read_corpus(text or [], text_split)
    t0 = time.monotonic()
    with bar(lines, "drawing lines", not quiet) as b:
        report = synthesize(out, lines, loaded, corpus, seed, height, workers, b.advance, crop_effects)
    seconds = time.monotonic() - t0
    if sheet is not None:
        contact_sheet(read_iam(out)[:16], sheet)
    summary = {
        **asdict(report),
        "out": str(out),
        "seconds": round(seconds, 2),
        "lines_per_s": round(lines / seconds, 1),
    }
    typer.echo(_json(summary, ensure_ascii=False))
