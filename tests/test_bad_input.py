"""Every user mistake gives one line naming the file and the problem, and a non-zero exit."""

import pickle
import shutil
import struct
import zlib

import pytest
import torch
from conftest import COPISTE_MINI, IAM_MINI
from PIL import Image
from typer.testing import CliRunner

from handwrite import checkpoint
from handwrite.atomic import atomic_write
from handwrite.cli import app
from handwrite.codec import Alphabet
from handwrite.config import ModelConfig
from handwrite.model import CRNN

runner = CliRunner()
GOOD_IMAGE = IAM_MINI / "lines" / "h00" / "h00-000" / "h00-000-18.png"


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    """An untrained but valid model: these tests are about input handling, not accuracy."""
    path = tmp_path_factory.mktemp("model") / "m.pt"
    alphabet = Alphabet.from_texts(["abc"])
    cfg = ModelConfig(
        height=32, channels=[8, 16], width_pools=2, lstm_hidden=8, lstm_layers=1, num_classes=len(alphabet)
    )
    checkpoint.save(path, CRNN(cfg), alphabet)
    return path


def _png_header_only(path, width, height):
    """A PNG whose header claims the given size, with no pixel data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + chunk + struct.pack(">I", zlib.crc32(chunk)))
    return path


def _bad_images(tmp):
    (tmp / "garbage.png").write_bytes(b"this is not an image")
    (tmp / "empty.png").write_bytes(b"")
    _png_header_only(tmp / "zerowidth.png", 0, 40)
    Image.new("L", (2, 100), 255).save(tmp / "sliver.png")
    return {
        "missing.png": "image not found",
        "garbage.png": "not a readable image",
        "empty.png": "not a readable image",
        "zerowidth.png": "",  # PIL's wording varies; the file name is what matters
        "sliver.png": "too narrow",
    }


def _one_error_line(output: str, name: str, problem: str):
    errors = [line for line in output.splitlines() if line.startswith("handwrite: error:")]
    assert any(name in line and problem in line for line in errors), output
    assert "Traceback" not in output


def test_transcribe_reports_each_bad_image_and_keeps_going(model_file, tmp_path):
    expected = _bad_images(tmp_path)
    args = [str(tmp_path / name) for name in expected]
    r = runner.invoke(app, ["transcribe", "-m", str(model_file), str(GOOD_IMAGE), *args, "-q"])
    assert r.exit_code == 1
    assert r.stdout.splitlines()[0].startswith(f"{GOOD_IMAGE}\t")  # the good image is still transcribed
    for name, problem in expected.items():
        _one_error_line(r.stderr, name, problem)


def test_transcribe_jsonl_marks_failures(model_file, tmp_path):
    r = runner.invoke(
        app, ["transcribe", "-m", str(model_file), str(tmp_path / "missing.png"), "--output", "jsonl", "-q"]
    )
    assert r.exit_code == 2  # every input failed: nothing was produced
    assert '"error": "' in r.stdout and '"text": null' in r.stdout


def test_transcribe_nothing_matched(model_file, tmp_path):
    r = runner.invoke(app, ["transcribe", "-m", str(model_file), str(tmp_path / "*.png")])
    assert r.exit_code == 2
    _one_error_line(r.stderr, str(tmp_path), "no images found")


@pytest.mark.parametrize("kind", ["missing", "text", "foreign-state-dict", "code-pickle", "truncated"])
def test_bad_model_files(model_file, tmp_path, kind):
    path = tmp_path / "model.pt"
    if kind == "text":
        path.write_text("hello")
    elif kind == "foreign-state-dict":
        torch.save(torch.nn.Linear(2, 2).state_dict(), path)  # another program's checkpoint
    elif kind == "code-pickle":

        class Evil:
            def __reduce__(self):
                return (shutil.rmtree, (str(tmp_path / "victim"),))

        (tmp_path / "victim").mkdir()
        path.write_bytes(pickle.dumps(Evil()))
    elif kind == "truncated":
        path.write_bytes(model_file.read_bytes()[:1000])
    r = runner.invoke(app, ["transcribe", "-m", str(path), str(GOOD_IMAGE)])
    assert r.exit_code == 2
    _one_error_line(r.stderr, str(path), "model file not found" if kind == "missing" else "not a handwrite model")
    if kind == "code-pickle":
        assert (tmp_path / "victim").is_dir()  # loading never ran the pickled call


def test_eval_counts_unreadable_images_as_errors(model_file, tmp_path):
    shutil.copytree(COPISTE_MINI, tmp_path / "set")
    (tmp_path / "set" / "imp_wikitexte_0022" / "eSc_line_7bbc4d4d.png").write_bytes(b"broken")
    r = runner.invoke(app, ["eval", "-m", str(model_file), str(tmp_path / "set"), "--json", "-q"])
    assert r.exit_code == 1
    assert '"failed": 1' in r.stdout
    _one_error_line(r.stderr, "eSc_line_7bbc4d4d.png", "not a readable image")


def test_eval_with_every_image_unreadable_is_an_input_error(model_file, tmp_path):
    shutil.copytree(COPISTE_MINI, tmp_path / "set")
    for png in (tmp_path / "set").rglob("*.png"):
        png.write_bytes(b"broken")
    r = runner.invoke(app, ["eval", "-m", str(model_file), str(tmp_path / "set"), "--json", "-q"])
    assert r.exit_code == 2
    _one_error_line(r.stderr, "eSc_line_7bbc4d4d.png", "not a readable image")


@pytest.mark.parametrize(
    "args, problem",
    [
        (["DATA_MISSING"], "no such file or folder"),
        (["EMPTY_IAM"], "holds no lines"),
        (["--format", "iam", str(COPISTE_MINI)], "cannot read"),
        (["--split", "nosuch", str(IAM_MINI)], "no split list"),
    ],
)
def test_eval_bad_datasets(model_file, tmp_path, args, problem):
    (tmp_path / "empty" / "ascii").mkdir(parents=True)
    (tmp_path / "empty" / "ascii" / "lines.txt").write_text("# nothing\n")
    subst = {"DATA_MISSING": str(tmp_path / "nope"), "EMPTY_IAM": str(tmp_path / "empty")}
    args = [subst.get(a, a) for a in args]
    r = runner.invoke(app, ["eval", "-m", str(model_file), *args])
    assert r.exit_code == 2
    _one_error_line(r.stderr, "", problem)


def test_train_skips_an_unreadable_line_with_a_warning(tmp_path):
    shutil.copytree(COPISTE_MINI, tmp_path / "set")
    (tmp_path / "set" / "imp_wikitexte_0024" / "eSc_line_b09cea4f.png").write_bytes(b"")
    r = runner.invoke(
        app,
        [
            "train",
            str(tmp_path / "set"),
            "--val-split",
            "validation",
            "-o",
            str(tmp_path / "out"),
            "--max-steps",
            "1",
            "--workers",
            "0",
            "--no-augment",
        ],
    )
    assert r.exit_code == 0, r.output
    warnings = [line for line in r.stderr.splitlines() if "skipped unreadable training line" in line]
    assert len(warnings) == 1 and "eSc_line_b09cea4f.png" in warnings[0] and "not a readable image" in warnings[0]
    assert (tmp_path / "out" / "last.pt").exists()


def test_train_with_no_readable_image_stops_before_training(tmp_path):
    shutil.copytree(COPISTE_MINI, tmp_path / "set")
    for png in (tmp_path / "set").rglob("*.png"):
        png.write_bytes(b"")
    r = runner.invoke(
        app,
        [
            "train",
            str(tmp_path / "set"),
            "--val-split",
            "validation",
            "-o",
            str(tmp_path / "out"),
            "-q",
            "--workers",
            "0",
        ],
    )
    assert r.exit_code == 2
    _one_error_line(r.stderr, ".png", "no readable line images")
    assert not (tmp_path / "out" / "last.pt").exists()


def test_train_needs_validation(tmp_path):
    r = runner.invoke(app, ["train", str(IAM_MINI), "-o", str(tmp_path / "out")])
    assert r.exit_code == 2
    _one_error_line(r.stderr, "", "validation set")


def test_resume_without_a_run(tmp_path):
    r = runner.invoke(
        app, ["train", str(IAM_MINI), "--val-split", "validation", "-o", str(tmp_path / "out"), "--resume", "-q"]
    )
    assert r.exit_code == 2
    _one_error_line(r.stderr, "last.pt", "nothing to resume")


def test_cuda_request_without_cuda(model_file):
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    r = runner.invoke(app, ["transcribe", "-m", str(model_file), str(GOOD_IMAGE), "--device", "cuda"])
    assert r.exit_code == 2
    _one_error_line(r.stderr, "", "no CUDA device")


def test_atomic_write_keeps_old_file_on_failure_and_normal_permissions(tmp_path):
    target = tmp_path / "out.txt"
    atomic_write(target, lambda f: f.write(b"old"))

    def crash(f):
        f.write(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(target, crash)
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]  # no temporary file left behind
    assert target.stat().st_mode & 0o044  # readable by others, as with a plain open() under the usual umask
