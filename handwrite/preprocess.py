"""From image files to padded batches the network reads.

A line image becomes a float tensor of shape (1, height, width) with ink as
high values (paper 0, ink 1), scaled to a fixed height with its aspect ratio
kept. Batches group lines of similar width so that little of each batch is
padding, and carry each line's true width so CTC never reads the padding.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator, Sequence

import numpy as np
import torch
from PIL import Image

from .codec import Alphabet
from .datasets import LineRecord
from .errors import HandwriteError
from .imageio import open_image
from .pagexml import LineCrop, crop_line

MIN_WIDTH = 8  # narrower than a few pixels after scaling is not a text line
# IAM's longest lines are about 20 times as wide as high; 100 admits every real line and refuses
# a 5000 x 1 image, which would scale to 320,000 columns and gigabytes of activations.
MAX_ASPECT = 100
# Ink-to-paper contrast (grey levels, 99.5th percentile against the median) below which an image holds
# no writing: the faintest of 1,505 real validation lines (iam-hooker, copiste-fr, poilus, mss19) had 31.
MIN_CONTRAST = 16
# The elastic distortion blurs with a 33-pixel kernel and cannot pad a narrower image (a crash seen
# on a one-character line 15 pixels wide); such lines are rare and are trained on undistorted.
AUGMENT_MIN_WIDTH = 33


def read_line_image(source) -> Image.Image:
    """The greyscale image of a line: a file, or a :class:`~handwrite.pagexml.LineCrop` of a page."""
    if isinstance(source, LineCrop):
        return crop_line(source)
    return open_image(source)


def load_line(source, height: int) -> np.ndarray:
    """Read one line image (a path or a page crop) as uint8 (height, width), ink high, contrast-stretched."""
    return prepare_line(read_line_image(source), height, source)


def prepare_line(grey: Image.Image, height: int, source="image") -> np.ndarray:
    """A greyscale line image as the network reads it: uint8 (height, width), ink high, contrast-stretched.

    uint8 rather than float keeps an in-memory cache of a whole training set
    four times smaller.
    """
    w, h = grey.size
    if w == 0 or h == 0:
        raise HandwriteError(f"{source}: image is empty ({w}x{h} pixels)")
    if w > MAX_ASPECT * h:
        raise HandwriteError(f"{source}: {w}x{h} pixels is too long for its height to be a text line "
                             f"(more than {MAX_ASPECT} times as wide as high)")
    new_w = max(1, round(w * height / h))
    if new_w < MIN_WIDTH:
        raise HandwriteError(f"{source}: image is too narrow to hold text ({w}x{h} pixels)")
    grey = grey.resize((new_w, height), Image.Resampling.BILINEAR)
    ink = 255.0 - np.asarray(grey, dtype=np.float32)
    # Paper is the most common tone of a line image; stretching from it to the
    # darkest strokes removes tinted paper and faint scans in one step.
    paper = np.median(ink)
    top = np.percentile(ink, 99.5)
    if top - paper < MIN_CONTRAST:
        raise HandwriteError(f"{source}: no writing found (blank or near-blank image)")
    scale = 255.0 / (top - paper)
    return np.clip((ink - paper) * scale, 0, 255).astype(np.uint8)


def to_tensor(line: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(line).float().div_(255.0).unsqueeze(0)


def make_augmenter():
    """Training-time distortions of a (1, H, W) ink-high tensor.

    Each is mild and applied with a probability, so most lines stay close to
    the real thing; together they mimic other hands, pens and scanners.
    """
    from torchvision.transforms import v2

    def stroke_width(x: torch.Tensor) -> torch.Tensor:
        # Ink is high, so max-pooling thickens strokes and min-pooling thins them.
        if torch.rand(()) < 0.5:
            return torch.nn.functional.max_pool2d(x, 3, stride=1, padding=1)
        return -torch.nn.functional.max_pool2d(-x, 3, stride=1, padding=1)

    return v2.Compose(
        [
            v2.RandomApply([v2.RandomAffine(degrees=1.5, shear=(-15, 15, 0, 0), scale=(0.9, 1.05))], p=0.5),
            v2.RandomApply([v2.ElasticTransform(alpha=12.0, sigma=4.0)], p=0.2),
            v2.RandomApply([v2.Lambda(stroke_width)], p=0.25),
            v2.RandomApply([v2.GaussianBlur(3, sigma=(0.3, 1.0))], p=0.2),
        ]
    )


class LineDataset(torch.utils.data.Dataset):
    """Lines as (image tensor, label list) pairs, all images decoded up front.

    Decoding and rescaling a PNG costs more than a training step's share of it,
    so each image is read once and kept as uint8; DataLoader workers forked
    afterwards share the decoded images. An unreadable image is left out and its
    reason kept in ``skipped`` (one bad crop among thousands should not cost a
    run); none readable is an error. ``advance(1)`` is called per image.
    """

    def __init__(
        self,
        records: Sequence[LineRecord],
        alphabet: Alphabet,
        height: int,
        augment: bool = False,
        seed: int = 0,
        advance=None,
    ):
        self.alphabet = alphabet
        self.height = height
        self.records: list[LineRecord] = []
        self.lines: list[np.ndarray] = []
        self.skipped: list[str] = []  # why each unreadable line was left out
        for r in records:
            try:
                self.lines.append(load_line(r.image, height))
                self.records.append(r)
            except HandwriteError as e:
                self.skipped.append(str(e))
            if advance:
                advance(1)
        if not self.records:
            raise HandwriteError(f"no readable line images among {len(self.skipped)} lines (first: {self.skipped[0]})")
        self.unknown: Counter = Counter()
        self.labels = [alphabet.encode(r.text, self.unknown) for r in self.records]
        self.widths = [line.shape[1] for line in self.lines]
        self.augment = make_augmenter() if augment else None
        self.seed = seed

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, key):
        """``key`` is a line index, or (epoch, index) from WidthBatchSampler: worker
        processes hold copies of this object, so the epoch must travel with the key."""
        epoch, i = key if isinstance(key, tuple) else (0, key)
        x = to_tensor(self.lines[i])
        if self.augment is not None and x.shape[-1] >= AUGMENT_MIN_WIDTH:
            # Seeding from (seed, epoch, line) makes augmentation the same whatever
            # the worker count, and lets a resumed run see the same images.
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(hash((self.seed, epoch, i)) & 0x7FFFFFFF)
                x = self.augment(x).clamp_(0, 1)
        return x, self.labels[i], i


class WidthBatchSampler(torch.utils.data.Sampler):
    """Batches of lines of similar width, in an order fixed by (seed, epoch).

    Lines are shuffled, cut into chunks of 50 batches, sorted by width inside each
    chunk and batched; the batches are then shuffled. Padding stays small while
    every epoch still mixes the data differently. ``skip`` drops the first batches
    of the epoch, for resuming mid-epoch. Items are (epoch, index) pairs.

    Distributed (``world`` > 1): every process draws the same global batches of
    ``batch_size * world`` lines and takes its own share of each, so the processes
    together see what one process with the global batch size would see. Global
    batches short of full are dropped, so that every process takes the same number
    of steps (a process waiting on a step that never comes would hang the run).
    """

    def __init__(self, widths: Sequence[int], batch_size: int, shuffle: bool, seed: int = 0, rank: int = 0, world: int = 1):
        self.widths = list(widths)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.rank, self.world = rank, world
        self.epoch = 0
        self.skip = 0

    def batches(self) -> list[list[int]]:
        size = self.batch_size * self.world
        order = list(range(len(self.widths)))
        if not self.shuffle:
            order.sort(key=self.widths.__getitem__)
            batches = [order[i : i + size] for i in range(0, len(order), size)]
        else:
            rng = random.Random(self.seed * 100_003 + self.epoch)
            rng.shuffle(order)
            chunk = size * 50
            batches = []
            for c in range(0, len(order), chunk):
                part = sorted(order[c : c + chunk], key=self.widths.__getitem__)
                batches += [part[i : i + size] for i in range(0, len(part), size)]
            rng.shuffle(batches)
        if self.world == 1:
            return batches
        return [b[self.rank :: self.world] for b in batches if len(b) == size]

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        for batch in self.batches()[self.skip :]:
            yield [(self.epoch, i) for i in batch]

    def __len__(self) -> int:
        if self.world == 1:
            return -(-len(self.widths) // self.batch_size)
        return len(self.widths) // (self.batch_size * self.world)


def collate(items):
    """Pad images to the widest in the batch (with paper, i.e. 0) and concatenate labels for CTC."""
    images, labels, indices = zip(*items)
    widths = torch.tensor([x.shape[-1] for x in images])
    batch = torch.zeros(len(images), 1, images[0].shape[1], int(widths.max()))
    for k, x in enumerate(images):
        batch[k, :, :, : x.shape[-1]] = x
    targets = torch.tensor([c for lab in labels for c in lab], dtype=torch.long)
    target_lengths = torch.tensor([len(lab) for lab in labels], dtype=torch.long)
    return batch, widths, targets, target_lengths, list(indices)
