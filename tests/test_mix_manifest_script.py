"""scripts/mix_manifest.py: one manifest of several datasets' splits, and --pack's portable copies."""

import subprocess
import sys

from conftest import FIXTURES
from PIL import Image

from handwrite.datasets import load_dataset
from handwrite.preprocess import load_line

SCRIPT = FIXTURES.parents[1] / "scripts" / "mix_manifest.py"


def test_pack_copies_lines_as_64_px_webp_the_network_reads_almost_alike(tmp_path):
    sources = [f"{FIXTURES / 'copiste-mini'}:train", f"{FIXTURES / 'iam-hooker-mini'}:validation"]
    subprocess.run([sys.executable, str(SCRIPT), str(tmp_path / "orig.tsv"), "train", *sources], check=True)
    packed = tmp_path / "sent" / "mix.tsv"
    subprocess.run([sys.executable, str(SCRIPT), "--pack", str(packed), "train", *sources], check=True)

    orig = load_dataset(tmp_path / "orig.tsv", split="train")
    moved = tmp_path / "elsewhere"
    (tmp_path / "sent").rename(moved)  # the copies and their manifest travel together
    copies = load_dataset(moved / "mix.tsv", split="train")
    assert len(copies) == len(orig) > 2
    assert [c.text for c in copies] == [o.text for o in orig]
    for o, c in zip(orig, copies):
        assert c.image.suffix == ".webp" and c.image.is_relative_to(moved)
        assert Image.open(c.image).height == 64
        a, b = load_line(o.image, 64), load_line(c.image, 64)
        assert a.shape == b.shape
        assert abs(a.astype(int) - b.astype(int)).mean() < 3  # of 255 grey levels (measured: 1.4-1.6 at quality 80)
