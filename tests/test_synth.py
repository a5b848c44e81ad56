"""handwrite synth: the dataset it writes, determinism, glyph coverage, bad input."""

import hashlib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from handwrite import synth
from handwrite.cli import app
from handwrite.datasets import read_iam
from handwrite.errors import HandwriteError

runner = CliRunner()


@pytest.fixture(scope="module")
def fonts():
    paths = synth.builtin_font_paths()
    if not paths:
        pytest.fail("no built-in handwriting fonts installed (the fontpkg-* dependencies are missing)")
    return [synth.load_font(p) for p in paths]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory, fonts):
    out = tmp_path_factory.mktemp("synth") / "set"
    report = synth.synthesize(out, 40, fonts, synth.read_corpus(), seed=3)
    return out, report


def _digest(root: Path) -> str:
    h = hashlib.sha256((root / "ascii" / "lines.txt").read_bytes())
    for png in sorted((root / "lines").rglob("*.png")):
        h.update(png.read_bytes())
    return h.hexdigest()


def test_reads_back_through_the_iam_reader(dataset):
    out, report = dataset
    records = read_iam(out)
    assert len(records) == report.lines == 40
    rows = [r for r in (out / "ascii" / "lines.txt").read_text().splitlines() if not r.startswith("#")]
    for record, row in zip(records, rows):
        assert record.id == row.split(" ")[0]
        assert record.text == " ".join(row.split(" ", 8)[8].split("|"))
        assert record.image.is_file()


def test_splits_are_disjoint_cover_every_id_and_keep_forms_whole(dataset):
    out, _ = dataset
    ids = {r.id for r in read_iam(out)}
    parts = {
        name: set((out / "splits" / f"{name}.txt").read_text().split()) for name in ("train", "validation", "test")
    }
    assert all(parts.values())
    assert parts["train"].isdisjoint(parts["validation"]) and parts["train"].isdisjoint(parts["test"])
    assert parts["validation"].isdisjoint(parts["test"])
    assert set().union(*parts.values()) == ids
    form = lambda i: i.rsplit("-", 1)[0]  # noqa: E731
    assert {form(i) for i in parts["train"]}.isdisjoint({form(i) for i in parts["test"]})


def test_images_have_the_asked_height_and_ink_inside(dataset):
    import numpy as np
    from PIL import Image

    out, _ = dataset
    for r in read_iam(out)[:10]:
        img = np.asarray(Image.open(r.image))
        assert img.shape[0] == 64
        # No stroke may touch the border: the outermost columns and rows must be paper.
        dark = img < (int(img.max()) + int(img.min())) / 2
        assert dark.any()
        assert not dark[:, 0].any() and not dark[:, -1].any()


def test_same_seed_is_byte_identical_whatever_the_workers(tmp_path, fonts, dataset):
    out, _ = dataset
    corpus = synth.read_corpus()
    synth.synthesize(tmp_path / "again", 40, fonts, corpus, seed=3, workers=2)
    assert _digest(tmp_path / "again") == _digest(out)
    synth.synthesize(tmp_path / "other", 40, fonts, corpus, seed=4)
    assert (tmp_path / "other" / "ascii" / "lines.txt").read_bytes() != (out / "ascii" / "lines.txt").read_bytes()


def test_crop_effects_change_the_images_only(tmp_path, fonts, dataset):
    # The same seed with page-crop effects: the same texts, fonts and sizes (the effects draw from a
    # generator of their own), other pixels; and still the same bytes whatever the number of workers.
    out, _ = dataset
    corpus = synth.read_corpus()
    synth.synthesize(tmp_path / "fx", 40, fonts, corpus, seed=3, crop_effects=True)
    rows = lambda root: (root / "ascii" / "lines.txt").read_text().splitlines()  # noqa: E731
    assert [r for r in rows(tmp_path / "fx") if not r.startswith("#")] == [
        r for r in rows(out) if not r.startswith("#")
    ]
    assert "crop effects" in rows(tmp_path / "fx")[1] and "crop effects" not in rows(out)[1]
    assert (tmp_path / "fx" / "fonts.tsv").read_bytes() == (out / "fonts.tsv").read_bytes()
    changed = [
        p
        for p in sorted((out / "lines").rglob("*.png"))
        if p.read_bytes() != (tmp_path / "fx" / p.relative_to(out)).read_bytes()
    ]
    assert len(changed) >= 20  # each effect is drawn with a probability; most lines get one
    synth.synthesize(tmp_path / "fx2", 40, fonts, corpus, seed=3, workers=2, crop_effects=True)
    assert _digest(tmp_path / "fx2") == _digest(tmp_path / "fx")


def test_polygon_fill_hides_the_neighbouring_lines_strokes(monkeypatch):
    # A line's strokes in the middle rows and neighbours that are ink everywhere: their strokes reach into
    # the crop's top and bottom rows, and outside the band around the line's own ink the paper is flat.
    import numpy as np

    for name, p in {"NEIGHBOURS": 1.0, "POLYGON": 1.0, "SHOW_THROUGH": 0.0, "RULED": 0.0, "PENCIL": 0.0}.items():
        monkeypatch.setattr(synth, name, p)
    line = np.zeros((64, 300), np.float32)
    line[26:40, 20:280:6] = 1.0  # strokes, mostly paper between them as in a real line
    neighbour = np.ones((64, 300), np.float32)
    rng = np.random.default_rng(0)
    ink, faint, outside = synth._crop_effects(line, lambda text: neighbour, ["a", "b", "c"], rng)
    assert faint is None
    assert ink[:4].max() == 1.0 or ink[-4:].max() == 1.0  # a neighbour's strokes came in
    assert outside[:4].all() and outside[-4:].all() and not outside[26:40, 20:280].any()
    image, _ = synth._paper(rng, ink.shape, ink, faint, outside)
    assert len(np.unique(image[outside])) == 1  # painted flat: no stroke of a neighbour is left there
    assert image[outside][0] > image[26:40, 20:280:6].mean() + 50  # the paper's tone, not the strokes'


def test_a_font_never_draws_text_it_has_no_glyphs_for(tmp_path, fonts):
    # Two fonts and a corpus where half the lines need a character only one of them has.
    small = min(fonts, key=lambda f: len(f.chars))
    big = max(fonts, key=lambda f: len(f.chars))
    rare = sorted(c for c in big.chars - small.chars if c.isalpha())[0]
    corpus_file = tmp_path / "corpus.txt"
    corpus_file.write_text(f"plain words here\nthe {rare}{rare} word\n", encoding="utf-8")
    report = synth.synthesize(tmp_path / "set", 30, [small, big], synth.read_corpus([corpus_file]), seed=0)
    assert report.resampled > 0
    by_path = {f.path: f for f in (small, big)}
    rows = (tmp_path / "set" / "fonts.tsv").read_text(encoding="utf-8").splitlines()[1:]
    texts = {r.id: r.text for r in read_iam(tmp_path / "set")}
    assert any(rare in t for t in texts.values())
    for row in rows:
        line_id, font_path, _ = row.split("\t")
        assert by_path[font_path].covers(texts[line_id]), (line_id, font_path)


def test_text_file_lines_longer_than_iam_lines_are_windowed(tmp_path, fonts):
    corpus_file = tmp_path / "long.txt"
    corpus_file.write_text(" ".join(f"word{i}" for i in range(60)) + "\n", encoding="utf-8")
    synth.synthesize(tmp_path / "set", 12, fonts, synth.read_corpus([corpus_file]), seed=0)
    for r in read_iam(tmp_path / "set"):
        assert 3 <= len(r.text.split()) <= synth.MAX_WORDS


def test_cli_writes_dataset_and_contact_sheet(tmp_path):
    from PIL import Image

    result = runner.invoke(
        app,
        ["synth", str(tmp_path / "set"), "--lines", "12", "--seed", "1", "-q", "--sheet", str(tmp_path / "sheet.png")],
    )
    assert result.exit_code == 0, result.output
    assert '"lines": 12' in result.stdout
    assert len(read_iam(tmp_path / "set")) == 12
    assert Image.open(tmp_path / "sheet.png").size[0] == 1000
    again = runner.invoke(app, ["synth", str(tmp_path / "set"), "--lines", "12"])
    assert again.exit_code == 2 and "already holds a dataset" in again.output


@pytest.mark.parametrize("problem", ["font", "corpus", "lines", "output"])
def test_bad_input_gives_one_clear_error(tmp_path, problem):
    bad_font = tmp_path / "broken.ttf"
    bad_font.write_bytes(b"not a font at all")
    empty = tmp_path / "empty.txt"
    empty.write_text("\n  \n", encoding="utf-8")
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    args, expected = {
        "font": (["--fonts", str(bad_font)], "broken.ttf: cannot read as a font"),
        "corpus": (["--text", str(empty)], "empty.txt: no text lines"),
        "lines": (["--lines", "0"], "lines must be at least 1"),
        "output": ([], "cannot write the dataset there"),
    }[problem]
    out = blocker / "set" if problem == "output" else tmp_path / "set"
    cmd = ["synth", str(out), "--lines", "3", "-q", *args]
    result = runner.invoke(app, cmd)
    assert result.exit_code == 2, result.output
    assert expected in result.output
    assert "Traceback" not in result.output


def test_unreadable_font_is_named(tmp_path):
    with pytest.raises(HandwriteError, match="nope.otf: font file or folder not found"):
        synth.find_fonts([tmp_path / "nope.otf"])


def test_text_can_come_from_a_dataset_split():
    from conftest import COPISTE_MINI

    from handwrite.datasets import load_dataset

    assert synth.read_corpus([COPISTE_MINI], split="train") == [
        r.text for r in load_dataset(COPISTE_MINI, split="train")
    ]
