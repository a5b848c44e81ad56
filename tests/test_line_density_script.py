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
    for name, width in (("narrow", 400), ("wide", 800)):
        Image.fromarray(np.full((64, width), 255, np.uint8)).save(data / f"{name}.png")
        (data / f"{name}.gt.txt").write_text("x" * 20, encoding="utf-8")
    out = subprocess.run(
        [sys.executable, str(SCRIPT), str(model), f"{data}:-", f"{data}:-"], check=True, capture_output=True, text=True
    ).stdout
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["data"] for r in rows] == [f"{data}:-", f"{data}:-", "all"]
    assert rows[0]["lines"] == 2 and rows[2]["lines"] == 4
    assert rows[0]["p10"] == pytest.approx(0.2 + 0.1 * 0.2, abs=1e-3)  # between 0.2 (wide) and 0.4 (narrow)
    assert rows[0]["median"] == pytest.approx(0.3, abs=1e-3)
