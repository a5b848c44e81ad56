"""Lines in batches for training: the torch Dataset of decoded lines, width-grouped batches, padding.

Batches group lines of similar width so that little of each batch is padding,
and carry each line's true width so CTC never reads the padding.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from itertools import repeat
from pathlib import Path

import numpy as np
import torch

from .atomic import atomic_write
from .augment import AUGMENT_MIN_WIDTH, augment
from .codec import Alphabet
from .datasets import LineRecord
from .errors import HandwriteError
from .preprocess import pad_lines, to_unit, try_pack_line, unpack_line

# Lines per task when decoding in processes: big enough that passing records and packed lines
# between processes costs little beside reading the images.
DECODE_CHUNK = 64


class LineDataset(torch.utils.data.Dataset):
    """Lines as (image tensor, label list) pairs, all images decoded up front.

    Decoding and rescaling a PNG costs more than a training step's share of it,
    so each image is read once and kept as uint8, compressed (``pack_line``: the
    42,000 lines of the 2026-11-29 mix took 2.6 GB unpacked); DataLoader workers
    forked afterwards share them. An unreadable image is left out and its
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
        shared: Path | None = None,
        workers: int = 1,
        max_slope: float = 0.0,
        min_ink_height: float = 0.0,
        margin: float = 0.0,
    ):
        """``shared``: take the lines another process decoded and wrote with :meth:`share` (same
        ``records``) instead of decoding them again. ``workers`` > 1: decode in that many processes.
        ``max_slope``, ``min_ink_height``, ``margin``: prepare the lines as recognition reads them with those
        settings (:func:`~handwrite.preprocess.prepare_for_reading`)."""
        self.alphabet = alphabet
        self.height = height
        self.skipped: list[str] = []  # why each unreadable line was left out
        if shared is not None:
            kept, self.widths, self.lines = _map_shared(shared)
            self.records = [records[k] for k in kept]
        else:
            self._decode(records, advance, workers, (max_slope, min_ink_height, margin))
        if not self.records:
            raise HandwriteError(f"no readable line images among {len(self.skipped)} lines (first: {self.skipped[0]})")
        self.unknown: Counter = Counter()
        self.labels = [alphabet.encode(r.text, self.unknown) for r in self.records]
        self.augment = augment
        self.seed = seed

    def _decode(
        self, records: Sequence[LineRecord], advance, workers: int, reading: tuple[float, float, float]
    ) -> None:
        self.records: list[LineRecord] = []
        self.kept: list[int] = []  # index in ``records`` of each line kept
        self.lines: list[bytes] | _MappedLines = []  # packed (preprocess.pack_line)
        self.widths: list[int] = []
        sources, height = [r.image for r in records], self.height
        if workers > 1 and len(records) >= DECODE_CHUNK * workers:
            with ProcessPoolExecutor(workers) as pool:
                packed = pool.map(try_pack_line, sources, repeat(height), *map(repeat, reading), chunksize=DECODE_CHUNK)
                self._keep(records, packed, advance)
        else:
            self._keep(records, (try_pack_line(s, height, *reading) for s in sources), advance)

    def _keep(self, records: Sequence[LineRecord], decoded, advance) -> None:
        for k, (r, result) in enumerate(zip(records, decoded)):
            if isinstance(result, str):
                self.skipped.append(result)
            else:
                self.lines.append(result[0])
                self.widths.append(result[1])
                self.records.append(r)
                self.kept.append(k)
            if advance:
                advance(1)

    def share(self, path: Path) -> None:
        """Write the packed lines to ``path`` (and ``path`` + ``.index.npz``) and read them from
        there from now on: the file is memory-mapped, so processes on one machine that open it with
        ``shared=path`` (DDP ranks, DataLoader workers) hold one copy in the page cache between them."""
        offsets = np.cumsum([0] + [len(b) for b in self.lines], dtype=np.int64)
        index = {"kept": np.array(self.kept, dtype=np.int64), "widths": np.array(self.widths), "offsets": offsets}

        def write(f):  # line by line: joining them first would hold every line twice
            header = {"descr": "|u1", "fortran_order": False, "shape": (int(offsets[-1]),)}
            np.lib.format.write_array_header_1_0(f, header)
            for b in self.lines:
                f.write(b)

        atomic_write(path, write)
        atomic_write(shared_files(path)[1], lambda f: np.savez(f, **index))
        _, self.widths, self.lines = _map_shared(path)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, key):
        """``key`` is a line index, or (epoch, index) from WidthBatchSampler: worker
        processes hold copies of this object, so the epoch must travel with the key."""
        epoch, i = key if isinstance(key, tuple) else (0, key)
        x = torch.from_numpy(to_unit(unpack_line(self.lines[i], self.height))).unsqueeze(0)
        if self.augment and x.shape[-1] >= AUGMENT_MIN_WIDTH:
            # Seeding from (seed, epoch, line) makes augmentation the same whatever
            # the worker count, and lets a resumed run see the same images.
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(hash((self.seed, epoch, i)) & 0x7FFFFFFF)
                x = augment(x).clamp_(0, 1)
        return x, self.labels[i], i


class _MappedLines(Sequence):
    """Packed lines as slices of one memory-mapped array."""

    def __init__(self, data: np.ndarray, offsets: np.ndarray):
        self.data, self.offsets = data, offsets

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, i: int) -> np.ndarray:
        return self.data[self.offsets[i] : self.offsets[i + 1]]


def shared_files(path: Path) -> tuple[Path, Path]:
    """The files :meth:`LineDataset.share` writes for ``path``: the packed lines and their index."""
    return path, path.with_name(path.name + ".index.npz")


def _map_shared(path: Path) -> tuple[list[int], list[int], _MappedLines]:
    with np.load(shared_files(path)[1], allow_pickle=False) as index:
        kept, widths, offsets = index["kept"].tolist(), index["widths"].tolist(), index["offsets"]
    return kept, widths, _MappedLines(np.load(path, mmap_mode="r", allow_pickle=False), offsets)


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

    def __init__(
        self, widths: Sequence[int], batch_size: int, shuffle: bool, seed: int = 0, rank: int = 0, world: int = 1
    ):
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


# Training batches are padded to a multiple of 32 columns. Every distinct batch shape costs
# oneDNN kernels of its own and leaves holes of its own size in the heap: at exact widths the
# allocator's free-but-held memory grew to 240 MB within 100 steps on iam-hooker, and padding
# took bench.py train's peak RSS from 1,075 to 985 MiB at the same speed (median of 4 pairs).
TRAIN_WIDTH_MULTIPLE = 32


def collate(items):
    """Pad images to the widest in the batch (with paper, i.e. 0) and concatenate labels for CTC."""
    images, labels, indices = zip(*items)
    batch, widths = pad_lines([x[0].numpy() for x in images], multiple=TRAIN_WIDTH_MULTIPLE)
    batch, widths = torch.from_numpy(batch), torch.from_numpy(widths)
    targets = torch.tensor([c for lab in labels for c in lab], dtype=torch.long)
    target_lengths = torch.tensor([len(lab) for lab in labels], dtype=torch.long)
    return batch, widths, targets, target_lengths, list(indices)
