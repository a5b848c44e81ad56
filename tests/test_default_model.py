"""The shipped default model: used when no --model is named, and it really reads handwriting."""

import json
from pathlib import Path

from typer.testing import CliRunner

from handwrite.cli import app

runner = CliRunner()
SAMPLES = Path(__file__).resolve().parents[1] / "data" / "samples"


def test_transcribe_without_model_uses_the_default():
    r = runner.invoke(app, ["transcribe", str(SAMPLES / "lines"), "--output", "jsonl", "-q"])
    assert r.exit_code == 0, r.output
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(rows) == 32
    assert all(row["error"] is None and row["text"] and 0 < row["confidence"] <= 1 for row in rows)


def test_eval_without_model_on_the_samples():
    # An untrained or broken model scores a CER near 100% here; the shipped one 16.39 % (2026-11-29,
    # int8 ONNX with beam search + LM); 20 % leaves room for onnxruntime versions, not for a worse model.
    r = runner.invoke(app, ["eval", str(SAMPLES), "--json", "-q"])
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)
    assert summary["lines"] == 32 and summary["failed"] == 0
    assert summary["cer"] < 0.20 and summary["decoder"] == "beam"
