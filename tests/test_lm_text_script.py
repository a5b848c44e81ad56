"""scripts/lm_text.py: period prose from the fetched packages, cut into lines of a handwritten line's length."""

import importlib.util
import json
import subprocess
import sys

from conftest import FIXTURES

SCRIPT = FIXTURES.parents[1] / "scripts" / "lm_text.py"
spec = importlib.util.spec_from_file_location("lm_text", SCRIPT)
lm_text = importlib.util.module_from_spec(spec)
spec.loader.exec_module(lm_text)


def test_prose_of_the_chosen_years_becomes_short_lines_with_ascii_quotes(tmp_path):
    sotu = tmp_path / "datasets-sotu" / "data"
    sotu.mkdir(parents=True)
    speech = "Fellow-Citizens: the Union’s “state” is — as ever — sound. " * 8
    (sotu / "1850_millard_fillmore_w.txt").write_text(speech + "\nSecond paragraph.", encoding="utf-8")
    (sotu / "1990_george_bush_r.txt").write_text("Too late for the period.", encoding="utf-8")
    moby = tmp_path / "datasets-moby-dick" / "data"
    moby.mkdir(parents=True)
    (moby / "chapter_2.json").write_text(json.dumps({"text": "Second chapter."}), encoding="utf-8")
    (moby / "chapter_10.json").write_text(json.dumps({"text": "Tenth\u2022 chapter."}), encoding="utf-8")
    out = tmp_path / "lines.txt"

    subprocess.run([sys.executable, str(SCRIPT), str(tmp_path), str(out)], check=True, capture_output=True)

    lines = out.read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith('Fellow-Citizens: the Union\'s "state" is - as')
    assert all(0 < len(line) <= lm_text.WIDTH for line in lines)
    assert lines[-3:] == ["Second paragraph.", "Second chapter.", "Tenth chapter."]  # chapters in number order
    assert not any("late" in line for line in lines)
    assert len(lines) > 8  # the long paragraph was wrapped, not kept whole
