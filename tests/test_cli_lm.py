"""`handwrite lm build` / `lm tune` and the decoding options of eval and transcribe."""

import json
import shutil

import pytest
from conftest import COPISTE_MINI, IAM_MINI
from typer.testing import CliRunner

from handwrite.cli import app
from handwrite.config import DecoderSpec
from handwrite.datasets import load_dataset
from handwrite.decoding import load_spec

runner = CliRunner()


@pytest.fixture
def model(trained, tmp_path):
    """A private copy of the trained model, so saved decoding settings stay in this test."""
    out, _ = trained
    path = tmp_path / "model.pt"
    shutil.copy(out / "best.pt", path)
    return path


def _build(tmp_path, *sources, order=4, extra=()):
    lm = tmp_path / "lm.arpa"
    r = runner.invoke(app, ["lm", "build", *map(str, sources), "--order", str(order), "-o", str(lm), *extra])
    return r, lm


def test_lm_build_from_dataset_and_text(tmp_path):
    text = tmp_path / "corpus.txt"
    text.write_text("the quick brown fox\nof them all\n", encoding="utf-8")
    r, lm = _build(tmp_path, IAM_MINI, text, extra=["--split", "train", "--lexicon-out", str(tmp_path / "words.txt")])
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)
    assert summary["lines"] == 6 + 2 and summary["bytes"] == lm.stat().st_size
    assert lm.read_text(encoding="utf-8").startswith("\n\\data\\\nngram 1=")
    words = (tmp_path / "words.txt").read_text(encoding="utf-8").split()
    assert "Aviemore" in words and "fox" in words and "them." not in words


def test_beam_with_lm_and_lexicon_reads_training_lines(model, tmp_path):
    r, lm = _build(tmp_path, IAM_MINI, extra=["--split", "train", "--lexicon-out", str(tmp_path / "words.txt")])
    assert r.exit_code == 0, r.output
    words = str(tmp_path / "words.txt")
    for extra in (
        [],
        ["--lm", str(lm)],
        ["--lm", str(lm), "--lexicon", words],
        ["--lm", str(lm), "--lexicon", words, "--oov-penalty", "5"],
    ):
        r = runner.invoke(
            app,
            ["eval", "-m", str(model), str(IAM_MINI), "--split", "train", "--decoder", "beam", "--json", "-q", *extra],
        )
        assert r.exit_code == 0, r.output
        summary = json.loads(r.stdout)
        assert summary["decoder"] == "beam" and summary["cer"] <= 0.05, extra


def test_tune_saves_settings_that_transcribe_then_uses(model, tmp_path):
    r, lm = _build(tmp_path, IAM_MINI, extra=["--split", "train"])
    r = runner.invoke(
        app,
        [
            "lm",
            "tune",
            "-m",
            str(model),
            str(IAM_MINI),
            "--split",
            "train",
            "--lm",
            str(lm),
            "--weights",
            "0.1,0.5",
            "--bonuses",
            "0,1",
            "--json",
            "-q",
        ],
    )
    assert r.exit_code == 0, r.output
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(rows) == 1 + 4 and rows[0]["decoder"] == "greedy"
    spec = load_spec(model)
    assert spec.decoder == "beam" and spec.lm_weight in (0.1, 0.5) and spec.insertion_bonus in (0, 1)
    assert spec.beam == DecoderSpec().beam  # tuned and saved at the width the model is read with by default
    # The settings travel with the model: moving both keeps the LM reference valid.
    moved = tmp_path / "moved"
    moved.mkdir()
    for f in (model, model.with_name(model.name + ".decoding.json")):
        shutil.move(f, moved / f.name)
    shutil.move(lm, moved / lm.name)
    r = runner.invoke(app, ["eval", "-m", str(moved / model.name), str(IAM_MINI), "--split", "train", "--json", "-q"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["decoder"] == "beam"
    r = runner.invoke(
        app,
        [
            "eval",
            "-m",
            str(moved / model.name),
            str(IAM_MINI),
            "--split",
            "train",
            "--json",
            "-q",
            "--decoder",
            "greedy",
        ],
    )
    assert json.loads(r.stdout)["decoder"] == "greedy"


def test_tune_keeps_greedy_when_no_lm_setting_beats_it(model, tmp_path):
    # An LM of the training lines written backwards: same characters, wrong order.
    text = tmp_path / "backwards.txt"
    lines = [r.text[::-1] for r in load_dataset(IAM_MINI, "auto", "train")]
    text.write_text("\n".join(lines * 5) + "\n", encoding="utf-8")
    r, lm = _build(tmp_path, text)
    assert r.exit_code == 0, r.output
    r = runner.invoke(
        app,
        [
            "lm",
            "tune",
            "-m",
            str(model),
            str(IAM_MINI),
            "--split",
            "train",
            "--lm",
            str(lm),
            "--weights",
            "4",
            "--bonuses",
            "0",
            "--json",
        ],
    )
    assert r.exit_code == 0, r.output
    greedy, beam = [json.loads(line) for line in r.stdout.splitlines()]
    assert beam["cer"] > greedy["cer"]
    assert load_spec(model).decoder == "greedy" and "best: greedy" in r.stderr


def test_parallel_beam_search_gives_the_same_text(model, tmp_path):
    r, lm = _build(tmp_path, IAM_MINI, extra=["--split", "train"])
    images = [str(IAM_MINI / "lines")]
    serial = runner.invoke(app, ["transcribe", "-m", str(model), *images, "--lm", str(lm), "-q"])
    parallel = runner.invoke(app, ["transcribe", "-m", str(model), *images, "--lm", str(lm), "-q", "--workers", "2"])
    assert serial.exit_code == parallel.exit_code == 0, parallel.output
    assert serial.stdout == parallel.stdout and len(serial.stdout.splitlines()) == 10


def test_lm_not_covering_the_model(model, tmp_path):
    r, lm = _build(tmp_path, COPISTE_MINI)  # French lines: lacks letters of the Hooker training text
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["eval", "-m", str(model), str(IAM_MINI), "--lm", str(lm)])
    assert r.exit_code == 2 and "does not cover" in r.stderr and "Traceback" not in r.output


@pytest.mark.parametrize("flag", ["--lm", "--lexicon"])
def test_missing_lm_or_lexicon_file(model, tmp_path, flag):
    r = runner.invoke(app, ["transcribe", "-m", str(model), str(IAM_MINI / "lines"), flag, str(tmp_path / "nope")])
    assert r.exit_code == 2
    assert str(tmp_path / "nope") in r.stderr and "not found" in r.stderr


def test_lm_build_from_empty_text(tmp_path):
    (tmp_path / "empty.txt").write_text("\n \n", encoding="utf-8")
    r, _ = _build(tmp_path, tmp_path / "empty.txt")
    assert r.exit_code == 2 and "no text" in r.stderr
    r, _ = _build(tmp_path, tmp_path / "missing.txt")
    assert r.exit_code == 2 and "missing.txt: no such file" in r.stderr


def test_one_lm_per_language_from_build_to_tune_to_eval(model, tmp_path):
    """A French LM built with --alphabet-of covers the English model; two LMs, each with its word
    list, tune and decode together."""
    fr, en = tmp_path / "fr.arpa", tmp_path / "en.arpa"
    words = {lang: str(tmp_path / f"{lang}.words") for lang in ("en", "fr")}
    r = runner.invoke(
        app,
        ["lm", "build", str(COPISTE_MINI), "-o", str(fr), "--alphabet-of", str(model), "--lexicon-out", words["fr"]],
    )
    assert r.exit_code == 0, r.output
    r = runner.invoke(
        app, ["lm", "build", str(IAM_MINI), "--split", "train", "-o", str(en), "--lexicon-out", words["en"]]
    )
    assert r.exit_code == 0, r.output
    base = ["-m", str(model), str(IAM_MINI), "--split", "train"]
    r = runner.invoke(app, ["eval", *base, "--lm", str(fr), "--json", "-q"])
    assert r.exit_code == 0, r.output  # without --alphabet-of: "does not cover" (test above)
    r = runner.invoke(
        app,
        ["lm", "tune", *base, "--lm", str(en), "--lm", str(fr), "--weights", "0.5,1", "--bonuses", "1", "-q"]
        + ["--lexicon", words["en"], "--lexicon", words["fr"], "--oov-penalties", "3,8", "--max-density", "0.3"]
        + ["--min-ink-height", "0.2", "--max-slope", "3", "--margin", "0.1"]
        + ["--json"],
    )
    assert r.exit_code == 0, r.output
    assert load_spec(model).lm == [str(en), str(fr)] and load_spec(model).max_density == 0.3
    assert load_spec(model).lexicon == [words["en"], words["fr"]]
    # Each grid row counts the lines each LM decoded, which the saved weights were chosen on.
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(rows) == 5 and all(sum(part["lines"] for part in row["per_lm"]) == 6 for row in rows[1:])
    assert [row["oov_penalty"] for row in rows[1:]] == [3, 3, 8, 8] and load_spec(model).oov_penalty in (3, 8)
    r = runner.invoke(app, ["lm", "tune", *base, "--lm", str(en), "--oov-penalties", "3", "--no-save"])
    assert r.exit_code == 2 and "--oov-penalties needs a --lexicon" in r.stderr
    r = runner.invoke(app, ["eval", *base, "--json", "-q"])
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)
    assert summary["decoder"] == "beam" and summary["cer"] <= 0.05
    # Tuning again keeps how the lines are read unless told otherwise.
    r = runner.invoke(app, ["lm", "tune", *base, "--lm", str(en), "--weights", "0.5", "--bonuses", "1", "-q"])
    spec = load_spec(model)
    assert r.exit_code == 0, r.output
    assert (spec.max_density, spec.min_ink_height, spec.max_slope, spec.margin) == (0.3, 0.2, 3, 0.1)


def test_lm_perplexity_is_lower_on_the_text_the_lm_knows(tmp_path):
    r, lm = _build(tmp_path, IAM_MINI, extra=["--split", "train"])
    backwards = tmp_path / "backwards.txt"
    backwards.write_text("".join(r.text[::-1] + "\n" for r in load_dataset(IAM_MINI, "auto", "train")), "utf-8")
    seen = runner.invoke(app, ["lm", "perplexity", str(lm), str(IAM_MINI), "--split", "train"])
    other = runner.invoke(app, ["lm", "perplexity", str(lm), str(backwards)])
    assert seen.exit_code == other.exit_code == 0, seen.output + other.output
    assert json.loads(seen.stdout)["lines"] == 6
    assert 1 < json.loads(seen.stdout)["perplexity"] < json.loads(other.stdout)["perplexity"] / 2


def test_characters_read_as_others_are_saved_by_tune_kept_and_cleared(model, tmp_path):
    """--read-as on eval and lm tune: tuning saves it and keeps it when not told otherwise; 'none' reads every
    character as written; a malformed value or a character the model lacks is a one-line error."""
    r, lm = _build(tmp_path, IAM_MINI, extra=["--split", "train"])
    assert r.exit_code == 0, r.output
    base = ["-m", str(model), str(IAM_MINI), "--split", "train"]
    tune = ["lm", "tune", *base, "--lm", str(lm), "--weights", "0.5", "--bonuses", "1", "-q"]
    # ’ is not among the model's characters: nothing to read, but the setting travels (a later model may have it).
    r = runner.invoke(app, [*tune, "--read-as", "’=e"])
    assert r.exit_code == 0 and load_spec(model).read_as == {"’": "e"}, r.output
    r = runner.invoke(app, tune)
    assert r.exit_code == 0 and load_spec(model).read_as == {"’": "e"}, r.output
    for flags in ([], ["--read-as", "none"]):
        r = runner.invoke(app, ["eval", *base, "--json", "-q", *flags])
        assert r.exit_code == 0 and json.loads(r.stdout)["cer"] <= 0.05, r.output
    r = runner.invoke(app, ["eval", *base, "--read-as", "e->a"])
    assert r.exit_code == 2 and "--read-as 'e->a'" in r.stderr
    r = runner.invoke(app, ["eval", *base, "--read-as", "e=’"])
    assert r.exit_code == 2 and "no character '’'" in r.stderr
