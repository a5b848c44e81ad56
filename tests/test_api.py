"""The public Python API: the same model, read the same way as by the CLI."""

import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import IAM_MINI
from PIL import Image
from typer.testing import CliRunner

import handwrite
from handwrite.cli import app

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "data" / "samples"
LINE = SAMPLES / "lines" / "h00-015-03.png"


def test_python_and_cli_give_the_same_text_with_the_models_saved_decoding():
    reader = handwrite.load()  # the shipped model, with the decoding saved beside it
    assert reader.spec.decoder == "beam" and reader.spec.lm  # what `handwrite lm tune` chose
    cli = runner.invoke(app, ["transcribe", str(LINE), "--output", "jsonl", "-q"])
    assert cli.exit_code == 0, cli.output
    row = json.loads(cli.stdout)
    result = reader.read(LINE)
    assert result.text == row["text"] and result.confidence == pytest.approx(row["confidence"])
    greedy = handwrite.load(decoder="greedy")
    cli_greedy = runner.invoke(app, ["transcribe", str(LINE), "--decoder", "greedy", "-q"])
    assert greedy.read(LINE).text == cli_greedy.stdout.split("\t", 1)[1].strip()


def test_read_takes_paths_pil_images_and_arrays_and_places_glyphs(trained):
    reader = handwrite.load(trained[0] / "best.pt")
    path = IAM_MINI / "lines" / "h00" / "h00-000" / "h00-000-18.png"
    image = Image.open(path)
    texts = {reader.read(src).text for src in (path, str(path), image, np.asarray(image.convert("RGB")))}
    assert len(texts) == 1
    result = reader.read(path)
    assert "".join(g.char for g in result.glyphs) == result.text
    assert [("".join(g.char for g in w)) for w in result.words()] == result.text.split()
    xs = [g.x0 for g in result.glyphs]
    assert xs == sorted(xs) and 0 <= xs[0] and result.glyphs[-1].x1 <= image.width
    assert all(0 <= g.confidence <= 1 for g in result.glyphs)
    with pytest.raises(handwrite.HandwriteError, match="no writing found"):
        reader.read(np.full((40, 300), 255, np.uint8))


def test_evaluate_and_train_from_python(trained, tmp_path):
    records = handwrite.load_dataset(IAM_MINI, split="train")
    ev = handwrite.evaluate(handwrite.load(trained[0] / "best.pt"), records)
    assert ev.counts.lines == len(records) and ev.counts.cer < 0.2
    result = handwrite.train(
        records,
        records,
        tmp_path / "run",
        handwrite.ModelConfig(height=32, channels=[8, 16], width_pools=2, lstm_hidden=8, lstm_layers=1),
        handwrite.TrainConfig(max_steps=2, workers=0),
        show_progress=False,
        log=lambda m: None,
    )
    assert result["step"] == 2 and (tmp_path / "run" / "best.pt").exists()


def test_the_readme_python_example_runs():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Python API") :]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "CER" in run.stdout


def test_a_wheel_carries_the_default_model(tmp_path):
    built = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if built.returncode != 0 and "No module named" in built.stderr:
        pytest.skip("building a wheel needs setuptools and wheel in this environment")
    assert built.returncode == 0, built.stderr[-1000:]
    (wheel,) = tmp_path.glob("handwrite-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for name in ("model.pt", "model.pt.decoding.json"):
        assert f"handwrite/models/default/{name}" in names
    spec = json.loads(zipfile.ZipFile(wheel).read("handwrite/models/default/model.pt.decoding.json"))
    for key in ("lm", "lexicon"):
        files = spec[key] if isinstance(spec.get(key), list) else [spec[key]] if spec.get(key) else []
        for name in files:
            assert f"handwrite/models/default/{name}" in names  # the LMs and word lists the settings name travel too


def test_network_calls_hold_at_most_a_batch_of_lines_and_columns(trained, monkeypatch):
    """Lines go to the network in batches capped by count and by padded columns (memory grows with
    lines x widest line), and every line gets its result. (The text itself may change a little with
    the grouping: the CNN reads a line's right edge beside its batch's padding.)"""
    from handwrite import recognize

    rec = handwrite.load(trained[0] / "best.pt", decoder="greedy", batch_size=4)
    images = [np.full((32, w), 255, np.uint8) for w in (300, 90, 700, 120, 160, 500, 80, 200, 640)]
    for im in images:
        im[8:24, 10 : im.shape[1] - 10 : 7] = 0  # strokes, so that every line holds writing
    calls = []
    run = rec.network.run
    monkeypatch.setattr(rec.network, "run", lambda x, w: calls.append(x.shape) or run(x, w))
    monkeypatch.setattr(recognize, "INFERENCE_COLUMNS", 600)
    results = rec.transcribe(images)
    assert all(r.error is None and r.text for r in results)
    assert sum(n for n, *_ in calls) == len(images)
    for n, _, _, width in calls:
        assert n <= 4 and (n == 1 or n * width <= 600)
    assert any(n == 1 for n, *_ in calls)  # the widest lines go alone


class _OneCharPerFrame:
    """A stand-in network that reads 'ab' alternately, one character in every frame (8 columns):
    as dense as CTC allows, whatever the line."""

    def __init__(self):
        from handwrite.config import ModelConfig

        self.cfg, self.widths = ModelConfig(), []

    def run(self, images, widths):
        self.widths += widths.tolist()
        frames = images.shape[-1] // 8
        log_probs = np.full((frames, len(widths), 3), -20.0, np.float32)
        log_probs[np.arange(frames), :, 1 + np.arange(frames) % 2] = 0.0
        return log_probs, widths // 8


def test_lines_denser_than_max_density_are_read_again_stretched():
    from handwrite import DecoderSpec, Recognizer
    from handwrite.codec import Alphabet

    net = _OneCharPerFrame()
    line = np.full((64, 400), 255, np.uint8)
    line[20:40, 10:390:6] = 0
    plain = Recognizer(net, Alphabet("ab"), decoder=DecoderSpec())
    assert net.widths == [] and plain.read(line).text == "ab" * 25 and net.widths == [400]

    net.widths = []
    rec = Recognizer(net, Alphabet("ab"), decoder=DecoderSpec(max_density=0.5))
    result = rec.read(line)
    # 50 characters in 50 frames: 1 per frame, so read again twice as wide (100 frames, 100 characters).
    assert net.widths == [400, 800] and len(result.text) == 100
    # Glyph positions are still the image's own pixels.
    assert all(0 <= g.x0 < g.x1 <= 400 for g in result.glyphs) and result.glyphs[-1].x1 > 390
    for limit, widths in ((0.25, [400, 800]), (1.0, [400])):  # at most twice as wide; not denser: read once
        net.widths = []
        Recognizer(net, Alphabet("ab"), decoder=DecoderSpec(max_density=limit)).read(line)
        assert net.widths == widths
    with pytest.raises(handwrite.HandwriteError, match="max_density"):
        DecoderSpec(max_density=-1)


def test_a_margin_of_paper_is_added_at_both_ends_and_glyphs_keep_the_images_positions():
    from handwrite import DecoderSpec, Recognizer
    from handwrite.codec import Alphabet

    net = _OneCharPerFrame()
    line = np.full((64, 400), 255, np.uint8)
    line[20:40, 10:390:6] = 0
    result = Recognizer(net, Alphabet("ab"), decoder=DecoderSpec(margin=0.25)).read(line)
    # 0.25 line heights = 16 columns at each end: 432 columns, 54 frames of 8; the first and last 2 are paper.
    assert net.widths == [432] and len(result.text) == 54 and result.size == (400, 64)
    assert [g.x0 for g in result.glyphs[:4]] == [0, 0, 0, 8]  # frame 3 starts 8 pixels into the image
    assert result.glyphs[-1].x1 == 400 and all(0 <= g.x0 <= g.x1 <= 400 for g in result.glyphs)
    # Read again stretched (54 characters in 54 frames, max_density 0.5): twice as wide, margins too.
    net.widths = []
    result = Recognizer(net, Alphabet("ab"), decoder=DecoderSpec(margin=0.25, max_density=0.5)).read(line)
    assert net.widths == [432, 864] and len(result.glyphs) == 108
    assert [g.x0 for g in result.glyphs[3:6]] == [0, 0, 4]  # 4 frames of margin; frame 5 starts 4 pixels in
    for bad in (-0.1, 11):
        with pytest.raises(handwrite.HandwriteError, match="margin"):
            DecoderSpec(margin=bad)


def test_lines_with_a_wide_margin_are_cropped_to_their_ink_before_reading():
    from handwrite import DecoderSpec, Recognizer
    from handwrite.codec import Alphabet

    net = _OneCharPerFrame()
    line = np.full((64, 400), 255, np.uint8)
    line[27:35, 10:390:6] = 0  # ink fills 8 of 64 rows
    Recognizer(net, Alphabet("ab")).read(line)
    assert net.widths == [400]
    net.widths = []
    result = Recognizer(net, Alphabet("ab"), decoder=DecoderSpec(min_ink_height=0.5)).read(line)
    # Cropped to 16 rows around the ink, then scaled to 64 rows high: four times as wide.
    assert net.widths == [1600] and result.size == (400, 64)
    assert all(0 <= g.x0 < g.x1 <= 400 for g in result.glyphs)  # positions are still the image's own
    for name, bad in (("min_ink_height", -0.1), ("min_ink_height", 1.5), ("max_slope", -1), ("max_slope", 60)):
        with pytest.raises(handwrite.HandwriteError, match=name):
            DecoderSpec(**{name: bad})


class _TwoSigns:
    """Three frames: blank most likely alone (0.4), the same sign written two ways (0.3 each)."""

    cfg = None

    def __init__(self):
        from handwrite.config import ModelConfig

        self.cfg = ModelConfig()

    def run(self, images, widths):
        log_probs = np.log(np.tile(np.array([0.4, 0.3, 0.3], np.float32), (3, len(widths), 1)))
        return log_probs, np.full(len(widths), 3)


def test_a_character_read_as_another_adds_its_probability_to_it():
    from handwrite import DecoderSpec, Recognizer
    from handwrite.codec import Alphabet

    line = np.full((64, 80), 255, np.uint8)
    line[20:40, 10:70:6] = 0
    net, signs = _TwoSigns(), Alphabet("'’")
    assert Recognizer(net, signs).read(line).text == ""  # neither way of writing it beats the blank
    for decoder in ("greedy", "beam"):
        rec = Recognizer(net, signs, decoder=DecoderSpec(decoder=decoder, read_as={"’": "'", "«": "'"}))
        assert rec.read(line).text == "'"  # together they do (0.6); « is not the model's: nothing to read
    with pytest.raises(handwrite.HandwriteError, match="no character '\"'"):
        Recognizer(net, signs, decoder=DecoderSpec(read_as={"’": '"'}))
    for bad in ({"’’": "'"}, {"’": "’"}, {"’": "'", "'": "`"}, {"’": 1}, ["’"]):
        with pytest.raises(handwrite.HandwriteError, match="read_as"):
            DecoderSpec(read_as=bad)
    reading = dict(max_density=0.4, min_ink_height=0.3, max_slope=2.0, margin=0.1, read_as={"’": "'"})
    assert DecoderSpec(decoder="beam", lm="x.arpa", beam=4, **reading).reading() == DecoderSpec(**reading)
