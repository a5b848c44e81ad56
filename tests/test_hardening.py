"""Hostile input: numbers out of range, odd pixel formats, byte-order marks, truncated or
inconsistent files, and fuzzed bytes for every reader. Each gives a clean error or a valid result."""

import json
import os
import resource
import shutil
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest
import torch
from conftest import COPISTE_MINI, IAM_MINI
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from PIL import Image
from typer.testing import CliRunner

from handwrite import checkpoint
from handwrite.cli import app
from handwrite.codec import Alphabet
from handwrite.config import ModelConfig
from handwrite.datasets import load_dataset, read_iam, read_pairs, read_tsv
from handwrite.decoding import load_spec
from handwrite.errors import HandwriteError
from handwrite.lm import CharLM, build_arpa, write_arpa
from handwrite.model import CRNN
from handwrite.preprocess import load_line

runner = CliRunner()
LINE = IAM_MINI / "lines" / "h00" / "h00-000" / "h00-000-18.png"
FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def model(trained):
    return trained[0] / "best.pt"


# --- numbers ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args, setting",
    [
        (["transcribe", "-b", "0", str(LINE)], "batch_size"),
        (["transcribe", "-b", "-3", str(LINE)], "batch_size"),
        (["transcribe", "--beam", "-2", "--decoder", "beam", str(LINE)], "beam"),
        (["transcribe", "--beam", "0", "--decoder", "beam", str(LINE)], "beam"),
        (["transcribe", "--beam", "100000", "--decoder", "beam", str(LINE)], "beam"),
        (["transcribe", "--workers", "-1", str(LINE)], "workers"),
        (["transcribe", "--threads", "0", str(LINE)], "threads"),
        (["transcribe", "--lm-weight", "nan", "--decoder", "beam", str(LINE)], "lm_weight"),
        (["eval", "-b", "0", str(IAM_MINI)], "batch_size"),
        (["train", str(IAM_MINI), "--val-split", "train", "-o", "OUT", "--max-steps", "0"], "max_steps"),
        (["train", str(IAM_MINI), "--val-split", "train", "-o", "OUT", "--epochs", "0"], "epochs"),
        (["train", str(IAM_MINI), "--val-split", "train", "-o", "OUT", "--lr", "-1"], "lr"),
        (["train", str(IAM_MINI), "--val-split", "train", "-o", "OUT", "--dropout", "2"], "dropout"),
        (["train", str(IAM_MINI), "--val-split", "train", "-o", "OUT", "--workers", "-1"], "workers"),
        (["train", str(IAM_MINI), "--val-split", "train", "-o", "OUT", "-b", "0"], "batch_size"),
        (["train", str(IAM_MINI), "--val-split", "train", "-o", "OUT", "--max-minutes", "-5"], "max_minutes"),
        (["train", str(IAM_MINI), "--val-split", "train", "-o", "OUT", "--channels", "16,x"], "--channels"),
        (["train", str(IAM_MINI), "--val-split", "train", "-o", "OUT", "--lr-patience", "0"], "lr_patience"),
        (["train", str(IAM_MINI), "--val-split", "train", "-o", "OUT", "--cell", "rnn"], "cell"),
        (["train", str(IAM_MINI), "--val-split", "train", "-o", "OUT", "--shortcut-weight", "-1"], "shortcut_weight"),
        (["lm", "build", str(IAM_MINI), "-o", "OUT/lm.arpa", "--order", "0"], "order"),
        (["synth", "OUT", "--lines", "2", "--workers", "0"], "workers"),
    ],
)
def test_numbers_out_of_range_are_one_line_errors(model, tmp_path, args, setting):
    args = [a.replace("OUT", str(tmp_path / "out")) for a in args]
    if args[0] in ("transcribe", "eval"):
        args[1:1] = ["-m", str(model)]
    r = runner.invoke(app, args)
    assert r.exit_code == 2, r.output
    assert r.output.startswith("handwrite: error:") and setting in r.output and len(r.output.splitlines()) == 1
    assert not (tmp_path / "out" / "last.pt").exists()


def test_output_paths_that_are_folders_are_refused_before_the_work(model, tmp_path):
    for args in (
        ["eval", "-m", str(model), str(IAM_MINI), "--report", str(tmp_path)],
        ["transcribe", "-m", str(model), str(LINE), "-o", str(tmp_path)],
        ["lm", "build", str(IAM_MINI), "-o", str(tmp_path)],
    ):
        r = runner.invoke(app, args)
        assert r.exit_code == 2 and "is a folder" in r.output, r.output


def test_widest_allowed_beam_stays_within_a_memory_limit(model, tmp_path):
    """Run as a separate process under a 4 GiB address-space limit: a hostile beam width is
    refused, the widest allowed one decodes a real line without exhausting the machine."""

    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (4 * 2**30, 4 * 2**30))

    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    base = [sys.executable, "-m", "handwrite", "transcribe", "-m", str(model), str(LINE), "--decoder", "beam", "-q"]
    widest = subprocess.run(base + ["--beam", "1024"], preexec_fn=limit, env=env, capture_output=True, timeout=600)
    assert widest.returncode == 0, widest.stderr.decode()[-500:]
    hostile = subprocess.run(base + ["--beam", "-2"], preexec_fn=limit, env=env, capture_output=True, timeout=600)
    assert hostile.returncode == 2 and b"beam" in hostile.stderr


# --- images -------------------------------------------------------------------------------


def _ink_line() -> np.ndarray:
    a = np.full((40, 200), 230, np.uint8)
    a[12:28, 20:180:7] = 20  # strokes
    return a


@pytest.mark.parametrize("mode", ["I;16", "RGBA-alpha-ink", "P", "CMYK", "LA", "1", "F"])
def test_pixel_formats_read_as_a_person_sees_them(tmp_path, mode):
    grey = _ink_line()
    reference = Image.fromarray(grey, "L")
    if mode == "I;16":
        image = Image.fromarray(grey.astype(np.uint16) * 257)
        assert image.mode == "I;16"
    elif mode == "RGBA-alpha-ink":  # black ink, transparent paper: only the alpha channel holds the writing
        rgba = np.zeros((40, 200, 4), np.uint8)
        rgba[..., 3] = 255 - grey
        image = Image.fromarray(rgba, "RGBA")
        reference = Image.fromarray((255 - (255 - grey).astype(np.float32) * 1.0).astype(np.uint8), "L")
    elif mode == "F":
        image = Image.fromarray(grey.astype(np.float32) / 255.0)
    elif mode == "1":
        image = reference.point(lambda v: 255 if v > 128 else 0).convert("1")
        reference = image.convert("L")
    else:
        image = reference.convert(mode)
    path = tmp_path / ("x.tif" if mode in ("CMYK", "F", "I;16") else "x.png")
    image.save(path)
    got = load_line(path, 32).astype(int)
    want = load_line(_save(reference, tmp_path / "ref.png"), 32).astype(int)
    assert np.abs(got - want).mean() < 3, mode


def _save(image, path):
    image.save(path)
    return path


def test_multi_page_tiff_is_refused(tmp_path):
    page = Image.fromarray(_ink_line(), "L")
    page.save(tmp_path / "two.tif", save_all=True, append_images=[page])
    with pytest.raises(HandwriteError, match="holds 2 pages"):
        load_line(tmp_path / "two.tif", 32)


def test_blank_and_near_blank_images_are_reported_not_transcribed(model, tmp_path):
    Image.new("L", (300, 40), 255).save(tmp_path / "blank.png")
    noisy = np.clip(np.random.default_rng(0).normal(240, 2, (40, 300)), 0, 255).astype(np.uint8)
    Image.fromarray(noisy, "L").save(tmp_path / "noise.png")
    r = runner.invoke(
        app, ["transcribe", "-m", str(model), str(tmp_path / "blank.png"), str(tmp_path / "noise.png"), str(LINE), "-q"]
    )
    assert r.exit_code == 1
    assert r.stderr.count("no writing found") == 2 and str(LINE) in r.stdout


def _png_bomb(path, width, height):
    """A valid greyscale PNG of width x height white pixels, a few hundred kB on disk."""

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    z = zlib.compressobj(9)
    row = b"\x00" + b"\xff" * width
    body = b"".join(z.compress(row) for _ in range(height)) + z.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", body) + chunk(b"IEND", b""))
    return path


def test_decompression_bomb_and_needle_images_fail_alone(model, tmp_path):
    _png_bomb(tmp_path / "bomb.png", 20000, 20000)  # 400 Mpx: Pillow's own refusal
    _png_bomb(tmp_path / "big.png", 13000, 12000)  # 156 Mpx: handwrite's limit, below Pillow's
    Image.new("L", (5000, 1), 0).save(tmp_path / "needle.png")
    shutil.copy(LINE, tmp_path / "good.png")
    for command in (["transcribe", "-m", str(model), str(tmp_path), "-q"],):
        r = runner.invoke(app, command)
        assert r.exit_code == 1, r.output
        assert "good.png\t" in r.stdout and "Traceback" not in r.output
        assert "bomb.png" in r.stderr and "big.png" in r.stderr and r.stderr.count("limit") == 2
        assert "needle.png" in r.stderr and "too long for its height" in r.stderr
    pairs = tmp_path / "set"
    pairs.mkdir()
    for name in ("bomb", "good"):
        shutil.copy(tmp_path / f"{name}.png", pairs / f"{name}.png")
        (pairs / f"{name}.gt.txt").write_text("A MOVE", encoding="utf-8")
    r = runner.invoke(app, ["eval", "-m", str(model), str(pairs), "--json", "-q"])
    assert r.exit_code == 1 and '"failed": 1' in r.stdout


# --- text hygiene -------------------------------------------------------------------------

BOM = "\ufeff"


def test_byte_order_marks_are_stripped_everywhere(tmp_path):
    pairs = tmp_path / "pairs"
    shutil.copytree(COPISTE_MINI, pairs)
    gt = next(pairs.rglob("*.gt.txt"))
    gt.write_text(BOM + gt.read_text(encoding="utf-8"), encoding="utf-8")
    split = pairs / "train.txt"
    split.write_text(BOM + split.read_text(encoding="utf-8"), encoding="utf-8")
    records = read_pairs(pairs, split="train")
    assert len(records) == len(split.read_text(encoding="utf-8-sig").split())
    assert all(BOM not in r.text for r in read_pairs(pairs))
    manifest = pairs / "manifest.tsv"
    manifest.write_text(BOM + manifest.read_text(encoding="utf-8"), encoding="utf-8")
    assert read_tsv(manifest, split="train")
    iam = tmp_path / "iam"
    shutil.copytree(IAM_MINI, iam)
    lines = iam / "ascii" / "lines.txt"
    lines.write_text(BOM + lines.read_text(encoding="utf-8"), encoding="utf-8")
    assert len(read_iam(iam)) == len(read_iam(IAM_MINI))


def test_split_lists_naming_unknown_ids_and_duplicated_rows_are_errors(tmp_path):
    iam = tmp_path / "iam"
    shutil.copytree(IAM_MINI, iam)
    (iam / "splits" / "typo.txt").write_text("h00-000-18\nh99-999-99\n", encoding="utf-8")
    with pytest.raises(HandwriteError, match="1 ids that lines.txt does not have.*h99-999-99"):
        read_iam(iam, split="typo")
    lines = iam / "ascii" / "lines.txt"
    rows = lines.read_text(encoding="utf-8").splitlines()
    data = [r for r in rows if r and not r.startswith("#")]
    lines.write_text("\n".join(rows + [data[0]]) + "\n", encoding="utf-8")
    with pytest.raises(HandwriteError, match="appears twice"):
        read_iam(iam)


# --- files --------------------------------------------------------------------------------


def test_truncated_or_inconsistent_arpa_files_are_refused(tmp_path):
    full = tmp_path / "full.arpa"
    write_arpa(full, build_arpa(["the quick brown fox", "jumps over"], 3))
    text = full.read_text(encoding="utf-8")
    cut = tmp_path / "cut.arpa"
    cut.write_text(text[: text.index("\\3-grams:")], encoding="utf-8")  # cut at a line boundary
    with pytest.raises(HandwriteError, match="end"):
        CharLM.load(cut)
    r = runner.invoke(app, ["lm", "compile", str(cut), "-o", str(tmp_path / "c.npz")])
    assert r.exit_code == 2 and not (tmp_path / "c.npz").exists()
    short = tmp_path / "short.arpa"
    lines = text.splitlines()
    first_bigram = lines.index("\\2-grams:") + 1
    short.write_text("\n".join(lines[:first_bigram] + lines[first_bigram + 1 :]) + "\n", encoding="utf-8")
    with pytest.raises(HandwriteError, match="2-grams"):
        CharLM.load(short)


def _model_file(path, alphabet_chars="abc", num_classes=None, poison=False):
    alphabet = Alphabet.from_texts([alphabet_chars])
    cfg = ModelConfig(
        height=32,
        channels=[8, 16],
        width_pools=2,
        lstm_hidden=8,
        lstm_layers=1,
        num_classes=num_classes or len(alphabet),
    )
    model = CRNN(cfg)
    if poison:
        with torch.no_grad():
            model.head.weight[0, 0] = float("nan")
    checkpoint.save(path, model, alphabet)
    return path


def test_inconsistent_and_non_finite_models_are_refused_at_load(tmp_path):
    r = runner.invoke(app, ["transcribe", "-m", str(_model_file(tmp_path / "wide.pt", num_classes=9)), str(LINE)])
    assert r.exit_code == 2 and "inconsistent model" in r.output
    r = runner.invoke(
        app, ["transcribe", "-m", str(_model_file(tmp_path / "nan.pt", poison=True)), str(LINE), "--output", "jsonl"]
    )
    assert r.exit_code == 2 and "not finite" in r.output and "NaN" not in r.stdout


def test_bad_decoding_settings_files(tmp_path, model):
    target = tmp_path / "m.pt"
    shutil.copy(model, target)
    for content in ('{"beam": "wide"}', '{"decoder": "sideways"}', "[1, 2]", '{"lm_weight": 1e999}', "{not json"):
        (tmp_path / "m.pt.decoding.json").write_text(content, encoding="utf-8")
        r = runner.invoke(app, ["transcribe", "-m", str(target), str(LINE)])
        assert r.exit_code == 2 and "m.pt.decoding.json" in r.output and "Traceback" not in r.output, content


def _bug_in_the_third_chunk(monkeypatch):
    """Stream one line a chunk, and let the third chunk's transcription fail as a bug would."""
    from handwrite import recognize

    real = recognize.Recognizer.transcribe
    calls = [0]

    def breaks_on_the_third_chunk(self, *args, **kwargs):
        calls[0] += 1
        if calls[0] == 3:
            raise RuntimeError("simulated bug")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(recognize, "STREAM_CHUNK", 1)
    monkeypatch.setattr(recognize.Recognizer, "transcribe", breaks_on_the_third_chunk)


def test_a_bug_late_in_a_batch_keeps_the_results_already_printed(model, monkeypatch, tmp_path):
    for k in range(3):
        shutil.copy(LINE, tmp_path / f"{k}.png")
    _bug_in_the_third_chunk(monkeypatch)
    r = runner.invoke(app, ["transcribe", "-m", str(model), str(tmp_path), "-q"])
    assert r.exit_code == 70 and "internal error" in r.output
    assert [row.split("\t")[0] for row in r.stdout.splitlines()] == [str(tmp_path / "0.png"), str(tmp_path / "1.png")]


def test_a_bug_late_in_an_evaluation_prints_the_partial_figures(model, monkeypatch, tmp_path):
    pairs = tmp_path / "set"
    pairs.mkdir()
    for k in range(3):
        shutil.copy(LINE, pairs / f"{k}.png")
        (pairs / f"{k}.gt.txt").write_text("A MOVE to stop", encoding="utf-8")
    _bug_in_the_third_chunk(monkeypatch)
    r = runner.invoke(app, ["eval", "-m", str(model), str(pairs), "-q"])
    assert r.exit_code == 70 and "internal error" in r.output
    partial = json.loads(r.stdout.splitlines()[0])
    assert partial["partial"] is True and partial["lines"] == 2


def test_a_bug_exits_70_not_1(model, monkeypatch):
    from handwrite import recognize

    def broken(*args, **kwargs):
        raise RuntimeError("simulated bug")

    monkeypatch.setattr(recognize.Recognizer, "transcribe", broken)
    r = runner.invoke(app, ["transcribe", "-m", str(model), str(LINE)])
    assert r.exit_code == 70 and "internal error" in r.output


# --- fuzzing: every reader gives a clean error or a valid result ---------------------------


def _clean(call):
    try:
        call()
    except HandwriteError:
        pass


@FUZZ
@given(st.binary(max_size=400))
def test_fuzz_image_bytes(tmp_path, data):
    path = tmp_path / "fuzz.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + data if data[:1] == b"\x00" else data)
    _clean(lambda: load_line(path, 32))


@FUZZ
@given(
    st.sampled_from(["L", "RGB", "RGBA", "LA", "P", "I;16", "1", "CMYK", "I", "F"]),
    st.integers(1, 120),
    st.integers(1, 60),
    st.integers(0, 255),
)
def test_fuzz_image_sizes_and_modes(tmp_path, mode, w, h, seed):
    rng = np.random.default_rng(seed)
    image = Image.fromarray(rng.integers(0, 256, (h, w), dtype=np.uint8), "L").convert(mode)
    path = tmp_path / ("f.tif" if mode in ("CMYK", "I", "F", "I;16") else "f.png")
    image.save(path)
    _clean(lambda: load_line(path, 32))


@FUZZ
@given(st.binary(max_size=300), st.binary(max_size=120))
@example(b"x", b"/")  # each once crashed the reader (found by this test in a fresh clone's CI run)
@example(b"x", b"\x00")
@example(b"x", b".")
def test_fuzz_pairs_and_split_lists(tmp_path, gt, listing):
    root = tmp_path / "pairs"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir()
    shutil.copy(LINE, root / "a.png")
    (root / "a.gt.txt").write_bytes(gt)
    (root / "train.txt").write_bytes(listing)
    _clean(lambda: load_dataset(root))
    _clean(lambda: load_dataset(root, split="train"))


@FUZZ
@given(st.binary(max_size=400))
@example(b".\tx\n")  # crashed the reader once (found by fuzzing)
@example(b"a\x00.png\tx\n")
def test_fuzz_tsv_manifests(tmp_path, data):
    manifest = tmp_path / "m.tsv"
    manifest.write_bytes(data)
    _clean(lambda: read_tsv(manifest))
    _clean(lambda: read_tsv(manifest, split="train"))


@FUZZ
@given(st.text(max_size=300), st.binary(max_size=80))
def test_fuzz_iam_lines_txt(tmp_path, text, listing):
    root = tmp_path / "iam"
    shutil.rmtree(root, ignore_errors=True)
    (root / "ascii").mkdir(parents=True)
    (root / "splits").mkdir()
    (root / "ascii" / "lines.txt").write_text(
        "a01-000u-00 ok 154 19 408 746 1661 89 A|MOVE\n" + text, encoding="utf-8", errors="replace"
    )
    (root / "splits" / "train.txt").write_bytes(listing)
    _clean(lambda: read_iam(root))
    _clean(lambda: read_iam(root, split="train"))


@FUZZ
@given(st.text(max_size=400))
def test_fuzz_arpa_files(tmp_path, text):
    path = tmp_path / "lm.arpa"
    path.write_text("\\data\\\nngram 1=2\n\n\\1-grams:\n" + text, encoding="utf-8", errors="replace")
    _clean(lambda: CharLM.load(path))


@FUZZ
@given(
    st.recursive(
        st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=8),
        lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=10), children, max_size=4),
        max_leaves=8,
    ),
    st.sampled_from(["decoder", "beam", "lm_weight", "insertion_bonus", "prune", "oov_penalty", "lm"]),
)
def test_fuzz_decoding_settings(tmp_path, value, key):
    model = tmp_path / "m.pt"
    for raw in (json.dumps(value), json.dumps({key: value})):
        (tmp_path / "m.pt.decoding.json").write_text(raw, encoding="utf-8")
        _clean(lambda: load_spec(model))
