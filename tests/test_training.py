"""The whole path learns: train on a handful of real lines until they are read
back correctly, then evaluate and transcribe through the CLI."""

import json

import pytest
import torch
from conftest import IAM_MINI, TINY
from typer.testing import CliRunner

from handwrite import checkpoint
from handwrite.cli import app
from handwrite.codec import Alphabet
from handwrite.config import ModelConfig, TrainConfig
from handwrite.datasets import load_dataset
from handwrite.training import train, training_set

runner = CliRunner()


def _quick(**kw):
    base = dict(
        epochs=150, batch_size=3, lr=3e-3, warmup_steps=10, augment=False, workers=0, patience=1000, lr_patience=1000
    )
    return TrainConfig(**{**base, **kw})


def test_training_cer_falls_to_near_zero(trained):
    out, result = trained
    history = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert history[0]["val_cer"] > 0.5  # it starts out unable to read
    assert result["best_val_cer"] <= 0.05
    assert history[-1]["train_loss"] < history[0]["train_loss"] / 10


def test_cli_eval_reads_the_training_lines_back(trained, tmp_path):
    out, _ = trained
    report = tmp_path / "report.tsv"
    r = runner.invoke(
        app,
        [
            "eval",
            "-m",
            str(out / "best.pt"),
            str(IAM_MINI),
            "--split",
            "train",
            "--json",
            "-q",
            "--report",
            str(report),
        ],
    )
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)
    assert summary["lines"] == 6 and summary["cer"] <= 0.05 and summary["unknown_chars"] == {}
    rows = report.read_text(encoding="utf-8").splitlines()
    assert rows[0] == "id\treference\thypothesis\tcer" and len(rows) == 7
    assert rows[1].startswith("h00-000-18\tof them.\t")


def test_cli_eval_counts_unknown_characters(trained):
    out, _ = trained
    # The validation split holds 'councils' and 'If the'; training never saw c, u or I.
    r = runner.invoke(
        app,
        ["eval", "-m", str(out / "best.pt"), str(IAM_MINI), "--split", "validation", "--include-err", "--json", "-q"],
    )
    assert r.exit_code == 0, r.output
    unknown = json.loads(r.stdout)["unknown_chars"]
    assert unknown == {"c": 2, "u": 1, "I": 1}


def test_cli_transcribe_files_folders_globs_jsonl(trained):
    out, _ = trained
    records = {r.image.name: r.text for r in load_dataset(IAM_MINI, split="train")}
    folder = IAM_MINI / "lines" / "h00"
    r = runner.invoke(
        app,
        [
            "transcribe",
            "-m",
            str(out / "best.pt"),
            str(folder),
            str(IAM_MINI / "lines" / "h01" / "*" / "*.png"),
            "--output",
            "jsonl",
            "-q",
        ],
    )
    assert r.exit_code == 0, r.output
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(rows) == 8  # 5 images under h00 (two of them err lines) + 3 under h01
    hits = [row for row in rows if row["path"].rsplit("/", 1)[1] in records]
    correct = sum(row["text"] == records[row["path"].rsplit("/", 1)[1]] for row in hits)
    assert correct >= len(hits) - 1
    assert all(0 < row["confidence"] <= 1 and row["error"] is None for row in rows)


def test_cli_transcribe_text_output_in_given_order(trained):
    out, _ = trained
    recs = load_dataset(IAM_MINI, split="train")[:3]
    r = runner.invoke(app, ["transcribe", "-m", str(out / "best.pt"), *[str(x.image) for x in recs[::-1]], "-q"])
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert [line.split("\t")[0] for line in lines] == [str(x.image) for x in recs[::-1]]


def test_cli_transcribe_paths_from_stdin_to_file(trained, tmp_path):
    out, _ = trained
    recs = load_dataset(IAM_MINI, split="train")[:2]
    result = tmp_path / "out.tsv"
    r = runner.invoke(
        app,
        ["transcribe", "-m", str(out / "best.pt"), "-", "-o", str(result), "-q"],
        input="".join(f"{x.image}\n" for x in recs),
    )
    assert r.exit_code == 0, r.output
    assert r.stdout == ""
    assert [line.split("\t")[0] for line in result.read_text(encoding="utf-8").splitlines()] == [
        str(x.image) for x in recs
    ]


@pytest.mark.parametrize(
    "extra", [[], ["--cell", "gru", "--shortcut-weight", "0.1", "--schedule", "cosine", "--warmup-steps", "1"]]
)
def test_cli_train_end_to_end(tmp_path, extra):
    out = tmp_path / "cli-run"
    r = runner.invoke(
        app,
        [
            "train",
            str(IAM_MINI),
            "--train-split",
            "train",
            "--val-split",
            "validation",
            "-o",
            str(out),
            "--max-steps",
            "3",
            "--batch-size",
            "2",
            "--height",
            "32",
            "--lstm-hidden",
            "16",
            "--lstm-layers",
            "1",
            "--workers",
            "0",
            "-q",
            *extra,
        ],
    )
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["stop_reason"] == "max_steps"
    assert (out / "last.pt").is_file() and (out / "best.pt").is_file()
    model, alphabet, state = checkpoint.load_model(out / "best.pt")
    assert model.cfg.height == 32 and state["train_config"]["batch_size"] == 2
    assert model.cfg.cell == ("gru" if extra else "lstm")
    assert state["train_config"]["schedule"] == ("cosine" if extra else "plateau")
    # The recorded rate is the schedule's, not the configured one: the cosine's is 0 at its last step,
    # the plateau schedule's still warming up.
    rate = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])["lr"]
    assert rate == pytest.approx(0.0 if extra else TrainConfig().lr * 4 / TrainConfig().warmup_steps)
    # The shortcut head is training state: in last.pt (to resume), not in the model users load.
    assert ("shortcut" in checkpoint.load_state(out / "last.pt")) == bool(extra)
    assert "shortcut" not in state
    # The same folder without --resume is refused rather than overwritten.
    again = runner.invoke(app, ["train", str(IAM_MINI), "--val-split", "validation", "-o", str(out), "-q"])
    assert again.exit_code == 2 and "already holds a training run" in again.output


def test_with_workers_the_lines_come_from_a_mapped_file_that_the_run_removes(tmp_path):
    """With DataLoader workers the training process maps the decoded lines from a file in the run
    folder instead of holding them: the same items, and the file goes when the run ends."""
    records = load_dataset(IAM_MINI, split="train")
    alphabet = Alphabet.from_texts(r.text for r in records)
    held = training_set(records, alphabet, 32, _quick(workers=0), tmp_path / "held")
    mapped = training_set(records, alphabet, 32, _quick(workers=1), tmp_path / "mapped")
    assert isinstance(held.lines, list) and not isinstance(mapped.lines, list)
    assert len(list((tmp_path / "mapped").glob(".lines-*.npy"))) == 1
    assert all(torch.equal(held[i][0], mapped[i][0]) for i in range(len(held)))
    out = tmp_path / "run"
    cfg = ModelConfig(height=32, channels=[8, 16], width_pools=2, lstm_hidden=16, lstm_layers=1)
    train(records, records, out, cfg, _quick(workers=1, max_steps=2), show_progress=False, log=lambda m: None)
    assert (out / "last.pt").is_file() and not list(out.glob(".lines-*"))


@pytest.mark.parametrize("variant", [{}, {"cell": "gru", "shortcut_weight": 0.1}])
def test_resume_continues_exactly(tmp_path, variant):
    """Stopping mid-epoch and resuming gives the same weights as one unbroken run
    (the shortcut head's weights and optimizer state included)."""
    records = load_dataset(IAM_MINI, split="train")
    cfg = dict(epochs=4, batch_size=2, lr=3e-3, warmup_steps=4, augment=True, lr_patience=1)
    if "shortcut_weight" in variant:
        cfg["shortcut_weight"] = variant["shortcut_weight"]
    tiny = dict(TINY, dropout=0.2, cell=variant.get("cell", "lstm"))
    quiet = dict(show_progress=False, log=lambda m: None)
    whole = train(records, records, tmp_path / "a", ModelConfig(**tiny), _quick(**cfg), **quiet)

    first = train(records, records, tmp_path / "b", ModelConfig(**tiny), _quick(max_steps=5, **cfg), **quiet)
    assert first["stop_reason"] == "max_steps"
    saved = checkpoint.load_state(tmp_path / "b" / "last.pt")
    assert saved["train_state"]["step"] == 5 and saved["train_state"]["step_in_epoch"] == 2  # 3 steps an epoch
    resumed = train(records, records, tmp_path / "b", None, _quick(**cfg), resume=True, **quiet)

    assert resumed["step"] == whole["step"] == 12
    assert resumed["val_cer"] == whole["val_cer"]
    a = checkpoint.load_state(tmp_path / "a" / "last.pt")
    b = checkpoint.load_state(tmp_path / "b" / "last.pt")
    assert a["train_state"]["lr_scale"] == b["train_state"]["lr_scale"]
    for name, tensor in a["model"].items():
        assert torch.equal(tensor, b["model"][name]), name
    for name, tensor in a.get("shortcut", {}).items():
        assert torch.equal(tensor, b["shortcut"][name]), name


def test_fine_tuning_keeps_known_characters_and_adds_new_ones(trained, tmp_path):
    """--init: the pretrained weights are the start; French characters get new output rows."""
    from conftest import COPISTE_MINI

    out, _ = trained
    pre, pre_alphabet, pre_state = checkpoint.load_model(out / "best.pt")
    run = tmp_path / "ft"
    r = runner.invoke(
        app,
        [
            "train",
            str(IAM_MINI),
            str(COPISTE_MINI),
            "-o",
            str(run),
            "--train-split",
            "train",
            "--val-split",
            "validation",
            "--init",
            str(out / "best.pt"),
            "--max-steps",
            "1",
            "--lr",
            "1e-9",
            "--no-augment",
            "--workers",
            "0",
            "-q",
        ],
    )
    assert r.exit_code == 0, r.output
    model, alphabet, state = checkpoint.load_model(run / "last.pt")
    assert alphabet.chars[: len(pre_alphabet.chars)] == pre_alphabet.chars
    new = alphabet.chars[len(pre_alphabet.chars) :]
    assert new and "é" in new  # from the French fixture lines
    assert state["model_config"]["height"] == TINY["height"]
    assert state["train_config"]["init_from"] == str(out / "best.pt")
    # One step at a negligible learning rate: every pretrained weight is (nearly) where it was
    # (batch-norm running statistics do move, so parameters only).
    rows = len(pre_alphabet)
    tuned_params = dict(model.named_parameters())
    for name, value in pre.named_parameters():
        tuned = tuned_params[name].detach()
        if name.startswith("head."):
            tuned = tuned[:rows]
        assert torch.allclose(tuned, value, atol=1e-4), name


def test_freezing_the_cnn_keeps_it_exactly_and_trains_the_rest(trained, tmp_path):
    out, _ = trained
    pre, _, pre_state = checkpoint.load_model(out / "best.pt")
    run = tmp_path / "frozen"
    r = runner.invoke(
        app,
        [
            "train",
            str(IAM_MINI),
            "-o",
            str(run),
            "--train-split",
            "train",
            "--val-split",
            "train",
            "--init",
            str(out / "best.pt"),
            "--freeze",
            "cnn",
            "--max-steps",
            "3",
            "--lr",
            "1e-2",
            "--warmup-steps",
            "1",
            "--workers",
            "0",
            "-q",
        ],
    )
    assert r.exit_code == 0, r.output
    state = checkpoint.load_state(run / "last.pt")
    assert state["train_config"]["freeze"] == "cnn"
    for name, value in pre_state["model"].items():
        if name.startswith("cnn."):
            assert torch.equal(state["model"][name], value), name  # BatchNorm statistics included
    assert any(not torch.equal(state["model"][n], v) for n, v in pre_state["model"].items() if n.startswith("rnn."))
    bad = runner.invoke(
        app, ["train", str(IAM_MINI), "-o", str(tmp_path / "x"), "--val-split", "train", "--freeze", "head"]
    )
    assert bad.exit_code == 2 and "freeze" in bad.output


def test_added_layers_stack_on_the_model_and_start_out_reading_as_it(trained, tmp_path):
    """--add-layers N: N residual recurrent layers on the --init model's, whose output they first leave
    as it was (their scale starts at zero), so the run starts from the model as it reads."""
    from handwrite.datasets import load_dataset as load
    from handwrite.preprocess import load_line, pad_lines, to_unit

    out, _ = trained
    pre, _, pre_state = checkpoint.load_model(out / "best.pt")
    run = tmp_path / "deeper"
    args = [
        "train",
        str(IAM_MINI),
        "-o",
        str(run),
        "--train-split",
        "train",
        "--val-split",
        "train",
        "--add-layers",
        "1",
    ]
    r = runner.invoke(app, [*args, "--init", str(out / "best.pt"), "--max-steps", "1", "--lr", "1e-9", "-q"])
    assert r.exit_code == 0, r.output
    model, _, state = checkpoint.load_model(run / "last.pt")
    cfg = state["model_config"]
    assert (cfg["lstm_layers"], cfg["residual_layers"]) == (pre_state["model_config"]["lstm_layers"] + 1, 1)
    assert state["train_config"]["add_layers"] == 1
    lines = [to_unit(load_line(rec.image, cfg["height"])) for rec in load(IAM_MINI, split="train")[:3]]
    images, widths = pad_lines(lines)
    model.cnn.load_state_dict(pre.cnn.state_dict())  # the step moved batch-norm statistics, not weights
    with torch.no_grad():
        before, _ = pre.eval()(torch.from_numpy(images), torch.from_numpy(widths))
        after, _ = model.eval()(torch.from_numpy(images), torch.from_numpy(widths))
    assert torch.allclose(after, before, atol=1e-5)
    assert not torch.equal(model.rnn.joins[-1].scale, torch.zeros_like(model.rnn.joins[-1].scale))  # it trains
    alone = runner.invoke(app, [*args[:-2], "--add-layers", "1", "-o", str(tmp_path / "x")])
    assert alone.exit_code == 2 and "--init" in alone.output and "Traceback" not in alone.output


def test_keep_epochs_then_average_them(tmp_path):
    """--keep-epochs writes each epoch's weights (switchable when resuming); `handwrite average`
    writes their element-wise mean as a model that loads like any other."""
    records = load_dataset(IAM_MINI, split="train")  # 6 lines: 3 steps an epoch at batch 2
    quiet = dict(show_progress=False, log=lambda m: None)
    run = tmp_path / "run"
    train(records, records, run, ModelConfig(**TINY), _quick(epochs=1, batch_size=2), **quiet)
    assert not list(run.glob("epoch-*.pt"))  # off by default
    train(records, records, run, None, _quick(epochs=3, batch_size=2, keep_epochs=True), resume=True, **quiet)
    assert sorted(p.name for p in run.glob("epoch-*.pt")) == ["epoch-2.pt", "epoch-3.pt"]
    last = checkpoint.load_state(run / "last.pt")["model"]
    third = checkpoint.load_state(run / "epoch-3.pt")["model"]
    assert all(torch.equal(last[k], third[k]) for k in third)  # the weights at the end of epoch 3

    out = tmp_path / "avg.pt"
    r = runner.invoke(app, ["average", str(run / "epoch-2.pt"), str(run / "epoch-3.pt"), "-o", str(out)])
    assert r.exit_code == 0, r.output
    second = checkpoint.load_state(run / "epoch-2.pt")["model"]
    model, _, state = checkpoint.load_model(out)
    assert state["averaged_from"] == [str(run / "epoch-2.pt"), str(run / "epoch-3.pt")]
    for name, tensor in model.state_dict().items():
        if tensor.is_floating_point():
            assert torch.allclose(tensor, (second[name] + third[name]) / 2, atol=1e-6), name
        else:
            assert torch.equal(tensor, third[name]), name
    assert not torch.equal(second["cnn.0.weight"], third["cnn.0.weight"])  # the mean is not a copy


def test_average_refuses_different_networks(trained, tmp_path):
    from handwrite.codec import Alphabet
    from handwrite.model import CRNN

    other = tmp_path / "other.pt"
    alphabet = Alphabet(list("ab"))
    checkpoint.save(other, CRNN(ModelConfig(**dict(TINY, channels=[8, 8, 8], num_classes=len(alphabet)))), alphabet)
    best = trained[0] / "best.pt"
    r = runner.invoke(app, ["average", str(best), str(other), "-o", str(tmp_path / "avg.pt")])
    assert r.exit_code != 0 and "cannot be averaged" in r.output and str(other) in r.output
    alone = runner.invoke(app, ["average", str(best), "-o", str(tmp_path / "avg.pt")])
    assert alone.exit_code != 0 and "at least two" in alone.output
    assert not (tmp_path / "avg.pt").exists()


def test_fine_tuning_keeps_the_decoding_of_the_model_it_starts_from(trained, tmp_path):
    """An adapted model reads the way the one it came from did (LM, weights, max_density, read_as); when
    the new lines bring characters that LM cannot score, it keeps only how lines are read."""
    import shutil
    from pathlib import Path

    from conftest import COPISTE_MINI

    from handwrite.config import DecoderSpec, TrainConfig
    from handwrite.datasets import load_dataset
    from handwrite.decoding import load_spec, save_spec
    from handwrite.lm import build_arpa, write_arpa
    from handwrite.training import train

    start = tmp_path / "start" / "model.pt"
    start.parent.mkdir()
    shutil.copy(trained[0] / "best.pt", start)
    lm = tmp_path / "start" / "lm.arpa"
    english = load_dataset(IAM_MINI, split="train")
    write_arpa(lm, build_arpa([r.text for r in english], 3))
    save_spec(start, DecoderSpec(decoder="beam", lm=str(lm), lm_weight=0.7, max_density=0.4, read_as={"’": "e"}))
    cfg = dict(max_steps=1, lr=1e-9, augment=False, workers=0, init_from=str(start))

    logs = []
    train(english, english, tmp_path / "same", cfg=TrainConfig(**cfg), show_progress=False, log=logs.append)
    spec = load_spec(tmp_path / "same" / "best.pt")
    assert (spec.decoder, spec.lm_weight, spec.max_density) == ("beam", 0.7, 0.4)
    assert Path(spec.lm).resolve() == lm.resolve() and not any("note:" in m for m in logs)

    french = load_dataset(COPISTE_MINI, split="train")
    train(english + french, english, tmp_path / "new", cfg=TrainConfig(**cfg), show_progress=False, log=logs.append)
    assert load_spec(tmp_path / "new" / "best.pt") == DecoderSpec(max_density=0.4, read_as={"’": "e"})
    assert any("does not know the new characters" in m and "é" in m for m in logs)


def test_adapt_trains_on_lines_prepared_as_the_adapted_model_will_read_them(trained, tmp_path):
    """The starting model's reading settings (levelling, cropping, margins) prepare the adapted run's lines, and
    stay the adapted model's; `train` takes them as options."""
    import shutil

    from handwrite.config import DecoderSpec
    from handwrite.decoding import load_spec, save_spec

    start = tmp_path / "start.pt"
    shutil.copy(trained[0] / "best.pt", start)
    save_spec(start, DecoderSpec(max_slope=3.0, min_ink_height=0.45, margin=0.125))
    run = tmp_path / "hand"
    r = runner.invoke(
        app, ["adapt", str(IAM_MINI), "--split", "train", "-m", str(start), "-o", str(run), "--steps", "1", "-q"]
    )
    assert r.exit_code == 0, r.output
    cfg = checkpoint.load_state(run / "last.pt")["train_config"]
    assert (cfg["max_slope"], cfg["min_ink_height"], cfg["margin"]) == (3.0, 0.45, 0.125)
    assert load_spec(run / "best.pt") == DecoderSpec(max_slope=3.0, min_ink_height=0.45, margin=0.125)

    args = ["train", str(IAM_MINI), "--train-split", "train", "--val-split", "train", "--init", str(start)]
    r = runner.invoke(
        app, [*args, "-o", str(tmp_path / "t"), "--max-steps", "1", "--max-slope", "2", "--margin", "0.1", "-q"]
    )
    assert r.exit_code == 0, r.output
    cfg = checkpoint.load_state(tmp_path / "t" / "last.pt")["train_config"]
    assert (cfg["max_slope"], cfg["min_ink_height"], cfg["margin"]) == (2.0, 0.0, 0.1)
    r = runner.invoke(app, [*args, "-o", str(tmp_path / "u"), "--max-slope", "50"])
    assert r.exit_code == 2 and "max_slope" in r.output and not (tmp_path / "u").exists()


def test_adapt_fine_tunes_on_the_same_lines_with_the_measured_recipe(trained, tmp_path):
    from handwrite.config import ADAPT_LR, ADAPT_WARMUP

    out, _ = trained
    run = tmp_path / "hand"
    args = ["adapt", str(IAM_MINI), "--split", "train", "-m", str(out / "best.pt"), "-o", str(run), "--steps", "2"]
    r = runner.invoke(app, [*args, "--seed", "7", "-q"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["stop_reason"] == "max_steps"
    state = checkpoint.load_state(run / "last.pt")
    cfg = state["train_config"]
    assert (cfg["init_from"], cfg["lr"], cfg["warmup_steps"], cfg["max_steps"], cfg["seed"]) == (
        str(out / "best.pt"),
        ADAPT_LR,
        ADAPT_WARMUP,
        2,
        7,
    )
    # The 6 lines are repeated to an epoch of ADAPT_EPOCH_LINES (26 steps), so the run stops inside
    # its first epoch; without that, 2 steps would be 2 whole epochs, each validated.
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [(m["epoch"], m["complete_epoch"]) for m in metrics] == [(1, False)]
    assert (run / "best.pt").is_file()
    r = runner.invoke(app, ["adapt", str(IAM_MINI), "-m", str(tmp_path / "model.onnx"), "-o", str(tmp_path / "x")])
    assert r.exit_code != 0 and "ONNX export cannot be trained" in r.output
