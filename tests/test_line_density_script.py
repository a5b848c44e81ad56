"""scripts/line_density.py: characters per output frame of a dataset's lines, as a model reads them."""

import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import FIXTURES
from PIL import Image

import handwrite

SCRIPT = FIXTURES.parents[1] / "scripts" / "line_density.py"


def test_a_line_twice_as_wide_for_its_text_is_half_as_dense(tmp_path):
    model = handwrite.default_model()
    if not model.is_file():
        pytest.skip("no default model installed")
    data = tmp_path / "lines"
    data.mkdir()
    # At 64 px high a 400-px line is 50 frames of the default network (8 columns each), an 800-px one 100.
    # Their ink: a band 16 rows high (a quarter of the height) in one, 32 rows (half) in the other.
    for name, width, rows in (("narrow", 400, 16), ("wide", 800, 32)):
        image = np.full((64, width), 255, np.uint8)
        image[8 : 8 + rows, 10:-10:5] = 0
        Image.fromarray(image).save(data / f"{name}.png")
        (data / f"{name}.gt.txt").write_text("x" * 20, encoding="utf-8")
    # A blank crop (TIME US has one) has nothing to measure: skipped and named, where it used to stop the script.
    Image.fromarray(np.full((64, 300), 250, np.uint8)).save(data / "blank.png")
    (data / "blank.gt.txt").write_text("x", encoding="utf-8")
    done = subprocess.run(
        [sys.executable, str(SCRIPT), str(model), f"{data}:-", f"{data}:-"], check=True, capture_output=True, text=True
    )
    assert done.stderr.count("blank.png") == 2
    out = done.stdout
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["data"] for r in rows] == [f"{data}:-", f"{data}:-", "all"]
    assert rows[0]["lines"] == 2 and rows[2]["lines"] == 4
    assert rows[0]["p10"] == pytest.approx(0.2 + 0.1 * 0.2, abs=1e-3)  # between 0.2 (wide) and 0.4 (narrow)
    assert rows[0]["median"] == pytest.approx(0.3, abs=1e-3)
    # The central 90 % of the ink's mass: all 16 rows of the narrow band, 30 of the 32 of the wide one.
    assert rows[0]["ink_height"]["median"] == pytest.approx((16 + 30) / 2 / 64, abs=1e-3)
    assert rows[2]["ink_height"]["p10"] == pytest.approx(16 / 64, abs=0.01)
    assert rows[2]["slope"]["p90"] == pytest.approx(0, abs=0.01)  # level bands
