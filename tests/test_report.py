"""Evaluation figures a practitioner acts on, the HTML report, model comparison, training curves."""

import json
import shutil
import subprocess
from html.parser import HTMLParser

import numpy as np
import pytest
from conftest import IAM_MINI
from PIL import Image
from typer.testing import CliRunner

from handwrite.cli import app
from handwrite.datasets import group_of
from handwrite.metrics import LineResult, analyse, graphemes, opcodes, unicode_words

runner = CliRunner()


def test_graphemes_words_and_alignment():
    assert graphemes("e\u0301te\u0301") == [
        "é",
        "t",
        "é",
    ]  # NFC first; a combining accent is not a character of its own
    assert graphemes("👍🏽!") == ["👍🏽", "!"]  # one emoji with its skin tone: one user-perceived character
    assert unicode_words("Dear Sir, it’s 1908.") == ["Dear", "Sir", "it’s", "1908"]
    assert opcodes("Dear Sir,", "Dcar Sir") == [
        ("equal", "D", "D"),
        ("replace", "e", "c"),
        ("equal", "ar Sir", "ar Sir"),
        ("delete", ",", ""),
    ]


def test_analysis_figures():
    lines = [
        LineResult("h00-001-00", "Dear Sir, yes", "Dcar sir yes", None),
        LineResult("h00-001-01", "Bonjour à tous", "Bonjour a tous", None),
        LineResult("h00-002-00", "word order", "order word", None),
        LineResult("h00-002-01", "lost", None, None, error="unreadable"),
    ]
    d = analyse(lines, [group_of(line.id) for line in lines])
    graphs = 13 + 14 + 10 + 4
    assert d["substitutions"] + d["deletions"] + d["insertions"] == pytest.approx(d["cer_graphemes"] * graphs)
    assert d["deletions"] >= 5  # the comma, and all of the unreadable line
    assert d["cer_case_insensitive"] < d["cer_graphemes"]  # S/s no longer counts
    assert d["cer_no_punctuation"] < d["cer_graphemes"]
    assert d["bow_error_rate"] < d["wer_unicode"]  # "order word" is all wrong in order, all right as a bag
    assert {"reference": "à", "hypothesis": "a", "count": 1} in d["confusions"]
    lo, hi = d["cer_graphemes_ci95"]
    assert 0 <= lo <= d["cer_graphemes"] <= hi <= 1
    assert set(d["subsets"]) == {"h00-001", "h00-002"} and d["subsets"]["h00-002"]["lines"] == 2


def test_cer_by_position_puts_each_error_in_its_tenth_of_the_line():
    def profile(*pairs):
        return analyse([LineResult(str(k), ref, hyp, None) for k, (ref, hyp) in enumerate(pairs)])["cer_by_position"]

    ten = "abcdefghij"  # one grapheme in each tenth
    assert profile((ten, "Xbcdefghij")) == [1.0] + [0.0] * 9
    assert profile((ten, "abcdefghi")) == [0.0] * 9 + [1.0]  # the last letter dropped
    assert profile((ten, "abcdefghijkl")) == [0.0] * 9 + [2.0]  # two inserted after the last
    assert profile((ten, "abcdXXXefghij")) == [0.0] * 4 + [3.0] + [0.0] * 5  # inserted before e, the fifth
    assert profile((ten + ten, ten + "abcdefghiX")) == [0.0] * 9 + [0.5]  # 1 of the last tenth's 2 graphemes
    # Every error is placed once: the profile weighted by each tenth's graphemes is the edit count.
    d = analyse([LineResult("a", "Dear Sir, yes", "Dcar sir yes", None), LineResult("b", "lost", None, None, "x")])
    per_tenth = ([2, 1, 1, 2, 1, 1, 2, 1, 1, 1], [1, 0, 1, 0, 0, 1, 0, 1, 0, 0])  # 13 and 4 graphemes
    weights = [a + b for a, b in zip(*per_tenth)]
    assert sum(r * n for r, n in zip(d["cer_by_position"], weights)) == pytest.approx(
        d["substitutions"] + d["deletions"] + d["insertions"]
    )
    assert profile(("", "abc")) == [0.0] * 10  # no reference, no positions


def test_subsets_from_line_ids():
    assert group_of("a01-000u-00") == "a01-000u"
    assert group_of("data/page_1:eSc_line_1") == "data/page_1"
    assert group_of("imp_wikitexte_0024/eSc_line_b09cea4f") == "imp_wikitexte_0024"
    assert group_of("line") == ""


class _Collect(HTMLParser):
    def __init__(self):
        super().__init__()
        self.lines, self.images, self.marks, self.tables = [], 0, set(), 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "div" and a.get("class") == "line":
            self.lines.append(float(a["data-cer"]))
        if tag == "img" and a.get("src", "").startswith("data:image/jpeg;base64,"):
            self.images += 1
        if tag == "span" and a.get("class") in ("del", "ins", "sub"):
            self.marks.add(a["class"])
        self.tables += tag == "table"


def test_html_report_and_its_failure_modes(trained, tmp_path):
    model = trained[0] / "best.pt"
    page = tmp_path / "report.html"
    r = runner.invoke(app, ["eval", "-m", str(model), str(IAM_MINI), "--include-err", "--html", str(page), "-q"])
    assert r.exit_code == 0, r.output
    parsed = _Collect()
    parsed.feed(page.read_text(encoding="utf-8"))
    assert len(parsed.lines) == 10 and parsed.images == 10  # every line, with its image embedded
    assert parsed.lines == sorted(parsed.lines, reverse=True)  # worst first
    assert parsed.tables >= 2 and "<script>" in page.read_text(encoding="utf-8")
    # A model that fails every line still gets a report, marked, and exit code 2.
    blank = tmp_path / "blank"
    blank.mkdir()
    for k in range(2):
        Image.new("L", (200, 40), 255).save(blank / f"{k}.png")
        (blank / f"{k}.gt.txt").write_text("nothing here", encoding="utf-8")
    r = runner.invoke(app, ["eval", "-m", str(model), str(blank), "--html", str(tmp_path / "b.html"), "-q"])
    assert r.exit_code == 2 and (tmp_path / "b.html").exists()
    assert "no writing found" in (tmp_path / "b.html").read_text(encoding="utf-8")
    # An unwritable place: one line, nothing left behind.
    r = runner.invoke(app, ["eval", "-m", str(model), str(IAM_MINI), "--html", str(tmp_path), "-q"])
    assert r.exit_code == 2 and "is a folder" in r.output


def test_several_models_compared_in_one_table(trained, tmp_path):
    model = str(trained[0] / "best.pt")
    r = runner.invoke(app, ["eval", "-m", model, "-m", model, str(IAM_MINI), "--split", "train", "--json", "-q"])
    assert r.exit_code == 0, r.output
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(rows) == 2 and rows[0]["cer"] == rows[1]["cer"] and rows[0]["lines_per_s"] > 0
    assert "cer_graphemes_ci95" in rows[0] and "confusions" in rows[0]
    table = runner.invoke(app, ["eval", "-m", model, "-m", model, str(IAM_MINI), "--split", "train", "-q"])
    assert table.stdout.splitlines()[0].startswith("model\tdecoder\tCER") and len(table.stdout.splitlines()) == 3
    both = runner.invoke(app, ["eval", "-m", model, "-m", model, str(IAM_MINI), "--html", str(tmp_path / "x.html")])
    assert both.exit_code == 2 and "one --model" in both.output


def test_plot_training_curves(trained, tmp_path):
    out = tmp_path / "curves.png"
    r = runner.invoke(app, ["plot", str(trained[0]), str(trained[0]), "-o", str(out)])
    assert r.exit_code == 0, r.output
    with Image.open(out) as im:
        assert im.format == "PNG" and im.width > 500
    r = runner.invoke(app, ["plot", str(tmp_path), "-o", str(tmp_path / "none.png")])
    assert r.exit_code == 2 and "metrics.jsonl" in r.output and not (tmp_path / "none.png").exists()


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
BROWSER_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium here (Debian package chromium; .ci/run installs it)")
def test_html_report_in_a_real_browser(trained, tmp_path):
    page = tmp_path / "report.html"
    r = runner.invoke(app, ["eval", "-m", str(trained[0] / "best.pt"), str(IAM_MINI), "--html", str(page), "-q"])
    assert r.exit_code == 0, r.output
    common = [CHROMIUM, *BROWSER_FLAGS, f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([*common, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120)
    assert '<span id="shown">8</span>' in dom.stdout  # the script ran: 8 lines counted and shown
    shot = tmp_path / "shot.png"
    subprocess.run(
        [*common, "--window-size=1000,1200", f"--screenshot={shot}", page.as_uri()],
        capture_output=True,
        timeout=120,
        check=True,
    )
    with Image.open(shot) as im:
        grey = np.asarray(im.convert("L"))
    assert (grey < 100).mean() > 0.01  # text and line images drawn, not a blank page


def test_report_shows_spaces_and_folds_long_subset_tables(tmp_path):
    """A confused space is shown as ␣, not as an empty cell; a per-page table of a mixed set
    (one subset per page) starts folded, so the lines are not pushed screens down."""
    from handwrite.datasets import LineRecord
    from handwrite.metrics import ErrorCounts, Evaluation
    from handwrite.report import OPEN_SUBSETS, html_report

    def page(n_pages):
        lines = [LineResult(f"p{k}/l", "a b", "ab", 1 / 3) for k in range(n_pages)]
        records = [LineRecord(tmp_path / "missing.png", "a b", f"p{k}/l") for k in range(n_pages)]
        ev = Evaluation(ErrorCounts(), lines)
        return "".join(html_report(ev, records, analyse(lines, [group_of(x.id) for x in lines]), "t"))

    few, many = page(2), page(OPEN_SUBSETS + 1)
    assert "<td>␣</td><td>(deleted)</td>" in few
    assert "<details open>" in few and "<details>" not in few
    assert "<details>" in many and f"Per subset ({OPEN_SUBSETS + 1})" in many
