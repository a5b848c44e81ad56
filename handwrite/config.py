"""Every setting of handwrite, in one place: typed dataclasses with their defaults and range checks.

* :class:`ModelConfig`  -- the network's shape; saved inside every model file.
* :class:`TrainConfig`  -- how a run trains; saved inside ``last.pt`` and ``best.pt``.
* :class:`DecoderSpec`  -- how lines are decoded; saved beside a model by ``lm tune``.

Each check runs when the object is made, so the CLI (which reads its defaults from
here) and a Python caller get the same rule and the same message, before any work.
Kept free of torch, so that reading settings costs nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .errors import HandwriteError, check_number

# A wider beam costs time and memory in proportion; past a thousand it only exhausts the machine.
MAX_BEAM = 1024
# Lines per network call when transcribing or evaluating: width-sorted, so little of a batch is
# padding; 16 lines a call ran 1.8x faster than 1 (bench.py infer, greedy, README).
INFERENCE_BATCH = 16
# ... and at most this many pixel columns (at the model's height) per call: the first conv block's
# activations grow with lines x widest line, and 16 long lines took eval's peak memory to 1 GB.
# Throughput did not change between 2,048 and 8,192 (greedy, 400 lines: 94.0 / 94.7 / 94.5 lines/s).
INFERENCE_COLUMNS = 4096
# PAGE/ALTO lines are cut by their polygon, or by the band around their baseline first (handwrite.pagexml).
GEOMETRIES = ("polygon", "baseline")
DEFAULT_GEOMETRY = "polygon"


CELLS = ("lstm", "gru")


@dataclass
class ModelConfig:
    height: int = 64  # input line height in pixels
    channels: list[int] = field(default_factory=lambda: [16, 32, 64, 96])
    width_pools: int = 3  # the first this-many blocks also halve the width
    lstm_hidden: int = 256  # units per direction of the recurrent layers (LSTM or GRU)
    lstm_layers: int = 3
    cell: str = "lstm"  # or "gru": a quarter fewer recurrent weights
    # The top this-many recurrent layers add their output to their input, scaled channel by channel by a
    # weight that starts at zero: layers stacked on a trained network (`train --init M --add-layers N`) leave
    # it reading exactly as before, and training then finds what they should add.
    residual_layers: int = 0
    dropout: float = 0.2
    num_classes: int = 0  # alphabet size + blank; set from the codec

    def __post_init__(self):
        check_number("height", self.height, 8, 1024, integer=True)
        if not self.channels or len(self.channels) > 8:
            raise HandwriteError("channels must list 1 to 8 conv blocks")
        for c in self.channels:
            check_number("channels", c, 1, 4096, integer=True)
        check_number("lstm_hidden", self.lstm_hidden, 1, 4096, integer=True)
        check_number("lstm_layers", self.lstm_layers, 1, 32, integer=True)
        # The first layer reads CNN features, not its own width: it cannot add its output to its input.
        check_number("residual_layers", self.residual_layers, 0, self.lstm_layers - 1, integer=True)
        check_number("dropout", self.dropout, 0, 1)
        if self.cell not in CELLS:
            raise HandwriteError(f"unknown recurrent cell {self.cell!r}; choose {' or '.join(CELLS)}")
        if self.dropout >= 1:
            raise HandwriteError(f"dropout must be < 1 (got {self.dropout!r}); 1 would drop everything")
        if self.height % (2 ** len(self.channels)):
            raise HandwriteError(
                f"height {self.height} must be divisible by 2**{len(self.channels)} (one halving per block)"
            )
        if not 0 <= self.width_pools <= len(self.channels):
            raise HandwriteError("width_pools must be between 0 and the number of conv blocks")

    @property
    def width_reduction(self) -> int:
        return 2**self.width_pools


FREEZABLE = ("", "cnn")
SCHEDULES = ("plateau", "cosine")

# Adapting a model to one hand (`handwrite adapt`; the README's "Adapting the model to your hand",
# measured there with 16-256 corrected lines of three held-out writers): 400 steps beat 150 by 1.1-3.6
# points with 64-256 lines and cost nothing with 16, where best.pt comes long before.
ADAPT_STEPS = 400
ADAPT_LR = 3e-4
ADAPT_WARMUP = 20
# Training validates once an epoch, and 16 lines make an epoch of 2 steps: validating and saving after
# each took 37 % of adapt's time, and the rate halved after every 3 such epochs without progress
# (2026-11-30). The lines are repeated to make epochs of at least this many lines: 31-43 % less time (two
# runs side by side against the old recipe alone), and 16-64 lines of two writers read their test pages
# 2.3 points better to 0.3 worse (README). (A cosine rate instead of halving read 256 lines of one writer
# 2.3 points worse.)
ADAPT_EPOCH_LINES = 200
# Self-training (`handwrite adapt --uncorrected`): the share of the starting model's readings of
# uncorrected lines that are trained on, surest first. On two held-out writers (README, "Adapting
# without corrections"), half beat all on both and a quarter on one; wrong characters on their test
# pages, both together: half 2,610, a quarter 2,623, all 2,633 (the shipped default: 2,799).
PSEUDO_KEEP = 0.5


def check_reading(settings) -> None:
    """The line preparation settings that TrainConfig and DecoderSpec share, checked alike."""
    check_number("min_ink_height", settings.min_ink_height, 0, 1)
    check_number("max_slope", settings.max_slope, 0, 45)
    check_number("margin", settings.margin, 0, 10)


@dataclass
class TrainConfig:
    epochs: int = 100
    max_minutes: float | None = None  # wall-clock budget, validation included
    max_steps: int | None = None  # stop after this many optimizer steps in all
    batch_size: int = 8
    lr: float = 1e-3
    weight_decay: float = 1e-2
    warmup_steps: int = 300
    lr_patience: int = 3  # epochs without improvement before the learning rate is halved
    schedule: str = "plateau"  # or "cosine": decay to zero at max_steps instead of halving (handwrite.schedule)
    patience: int = 10  # epochs without improvement before training stops
    grad_clip: float = 5.0
    augment: bool = True
    seed: int = 42
    workers: int = 1  # DataLoader processes preparing batches beside the training loop; > 1 also decode the images
    save_every: int = 1000  # steps between resumable checkpoints inside an epoch
    keep_epochs: bool = False  # also save each complete epoch's weights as epoch-N.pt (for `handwrite average`)
    init_from: str | None = None  # model whose weights the run started from (fine-tuning), for the record
    add_layers: int = 0  # recurrent layers stacked on init_from's, residual (ModelConfig.residual_layers)
    precision: str = "fp32"  # or "bf16": autocast on CUDA or CPU (the CTC loss stays in fp32)
    freeze: str = ""  # "cnn": keep the convolutional layers (and their BatchNorm statistics) as they are
    # Weight of a training-only CTC "shortcut" head reading the CNN features directly (Retsinas et al.
    # 2022 used 0.1): it makes the CNN learn characters before the recurrent layers can; 0 = none.
    shortcut_weight: float = 0.0
    # Training lines prepared with these reading settings (DecoderSpec's, of the same names: turned level
    # beyond max_slope degrees, cropped to fill min_ink_height, paper of margin line-heights added at each
    # end), as a model reading that way will see them; 0: as given. `adapt` takes the starting model's, which
    # the adapted model keeps.
    max_slope: float = 0.0
    min_ink_height: float = 0.0
    margin: float = 0.0

    def __post_init__(self):
        check_reading(self)
        check_number("epochs", self.epochs, 1, 1_000_000, integer=True)
        check_number("max_minutes", self.max_minutes, 0, None, low_open=True, optional=True)
        check_number("max_steps", self.max_steps, 1, None, integer=True, optional=True)
        check_number("batch_size", self.batch_size, 1, 4096, integer=True)
        check_number("lr", self.lr, 0, 10, low_open=True)
        check_number("weight_decay", self.weight_decay, 0, 10)
        check_number("warmup_steps", self.warmup_steps, 1, None, integer=True)
        check_number("lr_patience", self.lr_patience, 1, None, integer=True)
        check_number("patience", self.patience, 1, None, integer=True)
        check_number("grad_clip", self.grad_clip, 0, None, low_open=True)
        check_number("workers", self.workers, 0, 256, integer=True)
        check_number("save_every", self.save_every, 1, None, integer=True)
        check_number("shortcut_weight", self.shortcut_weight, 0, 10)
        check_number("add_layers", self.add_layers, 0, 8, integer=True)
        if self.add_layers and self.init_from is None:
            raise HandwriteError("add_layers stacks layers on a trained model: give the model to start from (--init)")
        if self.schedule not in SCHEDULES:
            raise HandwriteError(f"unknown schedule {self.schedule!r}; choose {' or '.join(SCHEDULES)}")
        if self.schedule == "cosine" and self.max_steps is None:
            raise HandwriteError("the cosine schedule decays to zero at max_steps: give --max-steps")
        if self.precision not in ("fp32", "bf16"):
            raise HandwriteError(f"unknown precision {self.precision!r}; choose fp32 or bf16")
        if self.freeze not in FREEZABLE:
            raise HandwriteError(
                f"freeze: unknown part {self.freeze!r}; choose one of {', '.join(map(repr, FREEZABLE))}"
            )


@dataclass
class DecoderSpec:
    """Which decoder to run and with what; what `lm tune` saves beside a model (``.decoding.json``)."""

    decoder: str = "greedy"  # greedy | beam
    # One LM file, or several (one per language): each document (page, folder of lines) then gets the
    # one that finds its greedy readings most likely.
    lm: str | list[str] | None = None
    # A word list (decoding.Lexicon) for every LM, or one per LM in ``lm``'s order (each language its words).
    lexicon: str | list[str] | None = None
    # 32, not 16: the default model's beam search with its LMs read the 2,126 real validation lines of its recipe
    # with 8,409 / 8,364 / 8,336 / 8,260 wrong characters at widths 16 / 24 / 32 / 64; at 32 one line's transcribe
    # took as long as at 16, a whole eval of 652 lines 1.35 times (64: 2.1 times). Twentieth session,
    # models/default/DEVELOPMENT.md.
    beam: int = 32
    lm_weight: float | list[float] = 0.5  # alpha: weight of the LM's log-probability
    insertion_bonus: float | list[float] = 0.0  # beta: added per character, offsets the LM's bias to short outputs
    # Either may be a list, one value per LM in ``lm``'s order: `lm tune` gives each LM the setting
    # that reads its own lines best.
    prune: float = 1e-3  # characters below this probability in a frame are not tried there
    oov_penalty: float | None = None  # with a lexicon: log-penalty per out-of-lexicon word; None forbids them
    # A line whose greedy reading has more characters per output frame than this is stretched along
    # the line to this density and read again (0: each line is read once). Dense writing leaves CTC
    # too few frames per character; the shipped model's setting is measured in models/default/DEVELOPMENT.md.
    max_density: float = 0.0
    # A line whose ink (the central 90 % of its mass) fills less of its height than this is cropped above
    # and below to fill this much before it is read (0: read as given). Crops cut with a margin wider than
    # the training lines' read worse; the shipped model's setting is measured in models/default/DEVELOPMENT.md.
    min_ink_height: float = 0.0
    # A line whose writing slopes more than this many degrees (fitted through its ink) is turned level
    # before it is read, and then cropped as above (0: read as given). The training lines run nearly level;
    # the shipped model's setting is measured in models/default/DEVELOPMENT.md.
    max_slope: float = 0.0
    # Paper added at each end of a line before it is read, in line heights (0: none). A crop that stops at its
    # last letter leaves the network nothing blank to end on; on such lines (TIME US's registers) the shipped
    # model's setting lowered the errors in the lines' last tenth, 15.1 -> 13.6 % (models/default/DEVELOPMENT.md).
    margin: float = 0.0
    # Characters the network writes that are read as another ({"’": "'"}): in every frame the first's
    # probability is added to the second's before decoding, so a model whose training sets typed one sign
    # two ways writes it one way (the shipped model's case: models/default/DEVELOPMENT.md has the figures).
    read_as: dict[str, str] = field(default_factory=dict)

    def __post_init__(self):
        if self.decoder not in ("greedy", "beam"):
            raise HandwriteError(f"unknown decoder {self.decoder!r}; choose greedy or beam")
        for name in ("lm", "lexicon"):
            value = getattr(self, name)
            if isinstance(value, (list, tuple)):  # one file stays a plain name, as in older settings files
                setattr(self, name, list(value) if len(value) > 1 else (value[0] if value else None))
        for name, value in [("lm", v) for v in self.lm_files] + [("lexicon", v) for v in self.lexicon_files]:
            if not isinstance(value, str):
                raise HandwriteError(f"{name} must be a file name (got {value!r})")
        if len(self.lexicon_files) > 1 and len(self.lexicon_files) != len(self.lm_files):
            raise HandwriteError(
                f"lexicon: {len(self.lexicon_files)} word lists for {len(self.lm_files)} LMs; give one per LM or one"
            )
        check_number("beam", self.beam, 1, MAX_BEAM, integer=True)
        for name in ("lm_weight", "insertion_bonus"):
            values = getattr(self, name)
            values = list(values) if isinstance(values, (list, tuple)) else [values]
            if not values:
                raise HandwriteError(f"{name}: an empty list; give one value per LM or one")
            for value in values:
                check_number(name, value, -100, 100)
            if len(set(values)) > 1 and len(values) != len(self.lm_files):
                raise HandwriteError(
                    f"{name}: {len(values)} values for {len(self.lm_files)} LMs; give one per LM or one"
                )
            setattr(self, name, values if len(set(values)) > 1 else values[0])
        check_number("prune", self.prune, 0, 1)
        check_number("oov_penalty", self.oov_penalty, 0, 1000, optional=True)
        check_number("max_density", self.max_density, 0, 10)
        check_reading(self)
        try:
            self.read_as = dict(self.read_as or {})
        except (TypeError, ValueError):
            raise HandwriteError(f"read_as: {self.read_as!r} is not a mapping of characters to others") from None
        for src, dst in self.read_as.items():
            if not (isinstance(src, str) and isinstance(dst, str) and len(src) == len(dst) == 1 and src != dst):
                raise HandwriteError(f"read_as: {src!r} -> {dst!r} is not one character read as another")
            if dst in self.read_as:
                raise HandwriteError(f"read_as: {dst!r} is read as another itself; map {src!r} to that one")

    def reading(self) -> DecoderSpec:
        """Only how lines and the network's output are read (``max_slope``, ``min_ink_height``, ``margin``,
        ``max_density``, ``read_as``), decoded greedily: what `lm tune` runs the network with, and what a model
        keeps when its search settings cannot apply."""
        return DecoderSpec(
            max_density=self.max_density,
            min_ink_height=self.min_ink_height,
            max_slope=self.max_slope,
            margin=self.margin,
            read_as=dict(self.read_as),
        )

    def weights(self, i: int) -> tuple[float, float]:
        """(alpha, beta) of the ``i``-th LM."""
        return tuple(v[i] if isinstance(v, list) else v for v in (self.lm_weight, self.insertion_bonus))

    @property
    def lm_files(self) -> list[str]:
        """The LM file names, as a list (empty without an LM)."""
        return _file_list(self.lm)

    @property
    def lexicon_files(self) -> list[str]:
        """The word list file names, as a list (empty without a lexicon)."""
        return _file_list(self.lexicon)

    def lexicon_of(self, i: int) -> str | None:
        """The word list of the ``i``-th LM (the one list when there is one for all)."""
        files = self.lexicon_files
        return files[i] if len(files) > 1 else (files[0] if files else None)


def _file_list(value: str | list[str] | None) -> list[str]:
    """One file name, several, or none, as a list."""
    return value if isinstance(value, list) else [] if value is None else [value]
