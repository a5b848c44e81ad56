"""Self-training: the model's own readings of uncorrected lines, the surest kept, as training lines."""

import json

import pytest
from conftest import FIXTURES, IAM_MINI
from typer.testing import CliRunner

import handwrite
from handwrite.cli import app
from handwrite.datasets import load_dataset
from handwrite.errors import HandwriteError
from handwrite.pagexml import LineCrop
from handwrite.pseudolabels import pseudo_label, unlabelled_lines

runner = CliRunner()
LINE_IMAGES = sorted((IAM_MINI / "lines").rglob("*.png"))


def test_unlabelled_lines_takes_line_images_and_the_lines_of_page_files(tmp_path):
    alto = FIXTURES / "poilus-alto" / "TestamentsDePoilus_will_AD78_0009-1.xml"
    broken = tmp_path / "broken.xml"
    broken.write_text("<PcGts><Page", encoding="utf-8")
    records, problems = unlabelled_lines([LINE_IMAGES[0], alto, broken])
    assert records[0].image == LINE_IMAGES[0] and records[0].document == str(LINE_IMAGES[0].parent)
    page = records[1:]
    # every line the page holds, transcribed or not, and none of its text
    assert len(page) >= len(load_dataset(alto)) > 0
    assert all(isinstance(r.image, LineCrop) and r.text == "" for r in records[1:])
    assert {r.document for r in page} == {str(alto.with_suffix(""))}
    assert len(problems) == 1 and "broken.xml" in problems[0]


def test_pseudo_label_keeps_the_surest_share_of_the_readings(trained):
    reader = handwrite.load(trained[0] / "best.pt", decoder="greedy")
    missing = IAM_MINI / "lines" / "nowhere.png"
    lines, _ = unlabelled_lines([*LINE_IMAGES, missing])
    kept, results = pseudo_label(reader, lines, keep=0.5)
    assert [r.path for r in results] == [r.image for r in lines]
    assert results[-1].error is not None and all(r.error is None for r in results[:-1])
    readable = [(line, r) for line, r in zip(lines, results) if r.text]
    assert len(kept) == round(len(readable) / 2) > 0
    surest = sorted(readable, key=lambda pair: -pair[1].confidence)[: len(kept)]
    assert [(k.image, k.text, k.id) for k in kept] == [(line.image, r.text, line.id) for line, r in surest]
    rest = [r.confidence for line, r in readable if (line, r) not in surest]
    assert rest and min(r.confidence for _, r in surest) >= max(rest)
    assert len(pseudo_label(reader, lines, keep=1.0)[0]) == len(readable)
    with pytest.raises(HandwriteError, match="keep"):
        pseudo_label(reader, lines, keep=0.0)


def test_cli_adapt_self_trains_on_uncorrected_lines(trained, tmp_path):
    best = trained[0] / "best.pt"
    run = tmp_path / "hand"
    args = ["adapt", "-u", "-", "-m", str(best), "-o", str(run), "--steps", "2", "-q"]
    r = runner.invoke(app, args, input="".join(f"{p}\n" for p in LINE_IMAGES))  # as adaptation_curve.sh gives them
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["stop_reason"] == "max_steps"
    rows = [line.split("\t") for line in (run / "pseudo-labels.tsv").read_text(encoding="utf-8").splitlines()]
    assert rows[0] == ["line", "text", "confidence", "kept"] and len(rows) == 1 + len(LINE_IMAGES)
    kept = [row for row in rows[1:] if row[3] == "1"]
    assert len(kept) == round(len([row for row in rows[1:] if row[1]]) / 2)
    assert min(float(row[2]) for row in kept) >= max(float(row[2]) for row in rows[1:] if row[3] == "0")
    assert (run / "best.pt").is_file()

    # A folder that already holds a run is refused before any reading; so is nothing to adapt to.
    (run / "pseudo-labels.tsv").unlink()
    again = runner.invoke(app, args, input=f"{LINE_IMAGES[0]}\n")
    assert again.exit_code != 0 and "already holds a training run" in again.output
    assert not (run / "pseudo-labels.tsv").exists()
    nothing = runner.invoke(app, ["adapt", "-m", str(best), "-o", str(tmp_path / "x")])
    assert nothing.exit_code != 0 and "no lines to adapt to" in nothing.output
    both = runner.invoke(app, ["adapt", str(IAM_MINI), "-u", str(IAM_MINI / "lines"), "-m", str(best), "-o", str(run)])
    assert both.exit_code != 0 and "not both" in both.output and "-m OUT/best.pt" in both.output
    with pytest.raises(HandwriteError, match="not both"):
        handwrite.adapt(load_dataset(IAM_MINI), tmp_path / "z", best, uncorrected=unlabelled_lines(LINE_IMAGES)[0])
    assert not (tmp_path / "z").exists()
    stray = runner.invoke(app, ["adapt", str(IAM_MINI), "--keep", "0.3", "-m", str(best), "-o", str(tmp_path / "k")])
    assert stray.exit_code != 0 and "--keep" in stray.output and not (tmp_path / "k").exists()
    gone = runner.invoke(app, ["adapt", "-u", str(tmp_path / "nowhere"), "-m", str(best), "-o", str(tmp_path / "y")])
    assert gone.exit_code != 0 and "nowhere: no such file or folder" in gone.output
