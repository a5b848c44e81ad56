import numpy as np
import pytest
import torch
from conftest import IAM_MINI
from PIL import Image

from handwrite import batching
from handwrite.batching import TRAIN_WIDTH_MULTIPLE, LineDataset, WidthBatchSampler, collate
from handwrite.codec import Alphabet
from handwrite.config import ModelConfig
from handwrite.datasets import LineRecord, load_dataset
from handwrite.errors import HandwriteError
from handwrite.model import CRNN, BiRNN
from handwrite.preprocess import (
    LEVEL_MIN_LENGTH,
    crop_to_ink,
    ink_slope,
    level,
    load_line,
    pack_line,
    prepare_for_reading,
    prepare_line,
    to_unit,
    unpack_line,
)


def test_load_line_ink_high_fixed_height(tmp_path):
    img = np.full((50, 200), 230, np.uint8)  # light paper
    img[20:30, 40:160] = 20  # a dark stroke
    Image.fromarray(img).save(tmp_path / "l.png")
    line = load_line(tmp_path / "l.png", 32)
    assert line.shape == (32, 128)  # 200 * 32 / 50
    assert line.dtype == np.uint8
    assert line[16, 80] > 200 and line[2, 5] < 20  # stroke high, paper low


def test_crop_to_ink_trims_a_wide_margin_around_the_ink_and_leaves_a_full_line():
    grey = np.full((200, 600), 230, np.uint8)
    grey[120:140, 20:580:7] = 20  # a band of ink 20 rows high, 110 rows below the top
    grey[5, 100:110] = 20  # a speck of the line above: too little ink to count
    image = Image.fromarray(grey)
    cropped = crop_to_ink(image, prepare_line(image, 64), 0.5)
    # 20 rows of ink now fill half the height, around the band's centre (measured on the 64-row line:
    # one of its rows is about 3 of these).
    width, height = cropped.size
    assert width == 600 and 38 <= height <= 46
    assert (np.asarray(cropped)[height // 2] == 20).any() and (np.asarray(cropped)[:8] == 230).all()
    assert crop_to_ink(image, prepare_line(image, 64), 0.05) is None  # the ink fills that much already
    edge = np.roll(grey, -115, axis=0)  # the band 5 rows from the top: the crop stays inside the image
    cropped = crop_to_ink(Image.fromarray(edge), prepare_line(Image.fromarray(edge), 64), 0.5)
    assert cropped.size == (600, height) and (np.asarray(cropped)[5:25] == 20).all(axis=0).any()


def _sloping_line(degrees: float, width: int = 1200) -> Image.Image:
    """A band of ink strokes along a straight line ``degrees`` steep (positive: falling to the right)."""
    grey = np.full((240, width), 230, np.uint8)
    for x in range(20, width - 20, 6):
        y = round(120 + (x - width / 2) * np.tan(np.radians(degrees)))
        grey[y - 10 : y + 10, x : x + 2] = 20
    return Image.fromarray(grey)


@pytest.mark.parametrize("degrees", [-8.0, -2.5, 0.0, 5.0])
def test_ink_slope_measures_how_steeply_the_writing_runs_and_level_undoes_it(degrees):
    image = _sloping_line(degrees)
    assert ink_slope(prepare_line(image, 64)) == pytest.approx(degrees, abs=0.5)
    levelled = level(image, ink_slope(prepare_line(image, 64)))
    assert abs(ink_slope(prepare_line(levelled, 64))) < 0.5
    assert levelled.size[0] >= image.size[0] and np.asarray(levelled)[0, 0] == 230  # corners: the paper's tone


def test_reading_settings_turn_a_sloping_line_level_then_crop_it():
    image = _sloping_line(-6.0)
    plain = prepare_for_reading(image, 64)
    assert (plain == prepare_line(image, 64)).all()
    read = prepare_for_reading(image, 64, max_slope=2.0, min_ink_height=0.45)
    assert abs(ink_slope(read)) < 0.5 and read.shape[1] > plain.shape[1]  # level, and cropped to its ink: wider
    assert (prepare_for_reading(image, 64, max_slope=10.0) == plain).all()  # not steeper than the limit: as given
    # A line under LEVEL_MIN_LENGTH line-heights long is read as given, however it slopes.
    short = _sloping_line(-6.0, width=round(240 * (LEVEL_MIN_LENGTH - 0.5)))
    assert abs(ink_slope(prepare_line(short, 64))) > 5
    assert (prepare_for_reading(short, 64, max_slope=2.0) == prepare_line(short, 64)).all()


def test_a_margin_adds_paper_at_both_ends():
    image = _sloping_line(0.0)
    plain = prepare_line(image, 64)
    read = prepare_for_reading(image, 64, margin=0.125)
    assert read.shape == (64, plain.shape[1] + 16)  # 0.125 line heights: 8 columns at each end
    assert (read[:, 8:-8] == plain).all() and not read[:, :8].any() and not read[:, -8:].any()


def test_a_faint_line_that_holds_writing_as_given_is_read_once_turned_level():
    # Faint thin strokes: contrast enough as given, too little by MIN_CONTRAST once turned (blurred, and the
    # taller image scaled down more). The line was refused as blank though recognition had found writing.
    grey = np.full((120, 1200), 230, np.uint8)
    for x in range(20, 1180, 9):
        y = round(60 + (x - 600) * np.tan(np.radians(-6.0)))
        grey[y - 8 : y + 8, x] = 170
    image = Image.fromarray(grey)
    with pytest.raises(HandwriteError, match="no writing found"):
        prepare_line(level(image, ink_slope(prepare_line(image, 64))), 64)
    read = prepare_for_reading(image, 64, max_slope=2.0)
    assert abs(ink_slope(read)) < 1 and read.max() == 255  # levelled, and stretched to full contrast
    with pytest.raises(HandwriteError, match="no writing found"):  # a blank image is still refused
        prepare_for_reading(Image.fromarray(np.full((120, 1200), 230, np.uint8)), 64, max_slope=2.0)


def test_width_batches_group_similar_widths_and_cover_all():
    widths = list(range(10, 1010, 10))
    sampler = WidthBatchSampler(widths, 4, shuffle=True, seed=1)
    batches = sampler.batches()
    assert sorted(i for b in batches for i in b) == list(range(100))
    # within a chunk the batch holds neighbours in width order
    assert max(max(widths[i] for i in b) - min(widths[i] for i in b) for b in batches) < 200
    sampler.epoch = 1
    assert sampler.batches() != batches  # each epoch is mixed differently
    sampler.epoch = 0
    assert sampler.batches() == batches  # but reproducibly
    sampler.skip = 3
    assert [[i for _, i in b] for b in sampler] == batches[3:]


def test_distributed_shards_split_each_global_batch_and_agree_on_length():
    widths = list(range(10, 1030, 10))  # 102 lines: not a multiple of the global batch of 8
    single = WidthBatchSampler(widths, 8, shuffle=True, seed=1)
    shards = [WidthBatchSampler(widths, 4, shuffle=True, seed=1, rank=r, world=2) for r in range(2)]
    assert len(shards[0]) == len(shards[1]) == len(shards[0].batches()) == len(shards[1].batches()) == 12
    complete = [b for b in single.batches() if len(b) == 8]
    for full, a, b in zip(complete, shards[0].batches(), shards[1].batches(), strict=True):
        assert sorted(a + b) == sorted(full)  # the two processes together see the one-process batch
        assert not set(a) & set(b) and len(a) == len(b) == 4
    # the incomplete global batch is dropped on every rank
    seen = {i for s in shards for b in s.batches() for i in b}
    assert len(seen) == 96


def test_collate_pads_with_paper_to_a_width_multiple_and_keeps_lengths():
    a = torch.ones(1, 8, TRAIN_WIDTH_MULTIPLE + 10)
    b = torch.ones(1, 8, 6)
    images, widths, targets, target_lengths, _ = collate([(a, [1, 2], 0), (b, [3], 1)])
    assert images.shape == (2, 1, 8, 2 * TRAIN_WIDTH_MULTIPLE)
    assert widths.tolist() == [TRAIN_WIDTH_MULTIPLE + 10, 6]
    assert images[0, 0, :, TRAIN_WIDTH_MULTIPLE + 10 :].abs().sum() == 0
    assert images[1, 0, :, 6:].abs().sum() == 0
    assert targets.tolist() == [1, 2, 3] and target_lengths.tolist() == [2, 1]


def test_model_output_lengths_follow_the_true_widths():
    cfg = ModelConfig(height=32, channels=[8, 16], width_pools=2, lstm_hidden=16, lstm_layers=2, num_classes=5)
    model = CRNN(cfg).eval()
    x = torch.rand(2, 1, 32, 64)
    x[1, :, :, 40:] = 0  # collate pads with paper
    log_probs, lengths = model(x, torch.tensor([64, 40]))
    assert log_probs.shape == (16, 2, 5)
    assert lengths.tolist() == [16, 10]
    assert torch.allclose(log_probs.exp().sum(-1), torch.ones(16, 2), atol=1e-5)
    # Padding must barely change a line's output: the short line alone gives nearly
    # the same scores. Not exactly: after a conv block the padding is no longer zero
    # (BatchNorm shifts it), so the last columns' receptive fields differ a little.
    alone, _ = model(x[1:, :, :, :40], torch.tensor([40]))
    assert torch.allclose(alone[:, 0], log_probs[:10, 1], atol=1e-2)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_forget_gate_bias_sums_to_one(cell):
    """LSTM forget gate, GRU update gate: both at rows h..2h, both start at a total bias of 1."""
    model = CRNN(ModelConfig(lstm_hidden=8, num_classes=3, cell=cell))
    h = 8
    lstms = [*model.rnn.forward_lstms, *model.rnn.backward_lstms]
    assert len(lstms) == 2 * model.cfg.lstm_layers
    for lstm in lstms:
        assert isinstance(lstm, torch.nn.GRU if cell == "gru" else torch.nn.LSTM)
        total = lstm.bias_ih_l0[h : 2 * h] + lstm.bias_hh_l0[h : 2 * h]
        assert torch.allclose(total, torch.ones(h))


@pytest.mark.parametrize("cell, residual", [("lstm", 0), ("gru", 0), ("lstm", 1)])
def test_birnn_ignores_padding_exactly(cell, residual):
    torch.manual_seed(0)
    rnn = BiRNN(4, 5, 2, 0.0, cell, residual)
    for join in rnn.joins[2 - residual :]:
        torch.nn.init.normal_(join.scale)  # a residual layer that adds something
    x = torch.randn(7, 2, 4)
    batched = rnn(x, torch.tensor([7, 4]))
    x[4:, 1] = 99.0  # whatever the padding holds
    assert torch.allclose(rnn(x, torch.tensor([7, 4]))[:4, 1], batched[:4, 1])
    alone = rnn(x[:4, 1:], torch.tensor([4]))
    assert torch.allclose(alone[:, 0], batched[:4, 1], atol=1e-6)
    # and it is a real bidirectional LSTM: the first frame depends on the last real one
    y = x.clone()
    y[3, 1] += 1.0
    assert not torch.allclose(rnn(y, torch.tensor([7, 4]))[0, 1], batched[0, 1])


@pytest.mark.parametrize(
    "settings, problem",
    [
        (dict(height=60), "divisible"),
        (dict(dropout=1.0), "dropout must be < 1"),
        (dict(dropout=-0.1), "dropout must be >= 0"),
        (dict(lstm_layers=0), "lstm_layers must be >= 1"),
        (dict(lstm_layers=2, residual_layers=2), "residual_layers must be >= 0 and <= 1"),
        (dict(channels=[]), "channels"),
        (dict(cell="transformer"), "unknown recurrent cell 'transformer'; choose lstm or gru"),
        (dict(height=float("nan")), "height must be an integer"),
    ],
)
def test_bad_model_config(settings, problem):
    from handwrite.errors import HandwriteError

    with pytest.raises(HandwriteError, match=problem):
        ModelConfig(**settings)


def test_augmentation_is_reproducible_and_changes_images():
    records = load_dataset(IAM_MINI)
    alphabet = Alphabet.from_texts(r.text for r in records)
    plain = LineDataset(records, alphabet, 32)
    aug = LineDataset(records, alphabet, 32, augment=True, seed=3)
    changed = 0
    for i in range(len(records)):
        x1, labels, _ = aug[(0, i)]
        x2, _, _ = aug[(0, i)]
        assert torch.equal(x1, x2)
        assert x1.shape[1] == 32 and 0 <= x1.min() and x1.max() <= 1
        assert alphabet.decode(labels) == records[i].text
        changed += not torch.equal(x1, plain[i][0])
    assert changed >= 2


def test_augmentation_of_every_width_down_to_the_narrowest_line(tmp_path):
    """Lines as narrow as MIN_WIDTH once scaled (one character) must not crash a training epoch."""
    from handwrite.datasets import LineRecord
    from handwrite.preprocess import MIN_WIDTH

    records = []
    for k, width in enumerate([MIN_WIDTH, 15, 20, 32, 33, 40]):
        path = tmp_path / f"{k}.png"
        im = Image.new("L", (width, 64), 255)
        im.paste(0, (width // 4, 20, width // 2 + 1, 44))
        im.save(path)
        records.append(LineRecord(path, "a", str(k)))
    data = LineDataset(records, Alphabet.from_texts(["a"]), 64, augment=True)
    for epoch in range(5):
        for i in range(len(records)):
            x, _, _ = data[(epoch, i)]
            assert x.shape[-1] == data.widths[i]


def test_training_lines_are_kept_packed_and_come_back_exactly():
    """LineDataset keeps lines compressed; what a step reads is the prepared line, bit for bit."""
    records = load_dataset(IAM_MINI, split="train")
    dataset = LineDataset(records, Alphabet.from_texts(r.text for r in records), 32)
    for i, r in enumerate(dataset.records):
        line = load_line(r.image, 32)
        assert isinstance(dataset.lines[i], bytes) and len(dataset.lines[i]) < line.nbytes
        assert np.array_equal(unpack_line(pack_line(line), 32), line)
        assert dataset.widths[i] == line.shape[1]
        assert np.array_equal(dataset[i][0][0].numpy(), to_unit(line))


@pytest.mark.parametrize("workers", [1, 2])
def test_training_lines_can_be_prepared_as_recognition_reads_them(workers):
    """With reading settings the training lines are the ones prepare_for_reading makes (levelled,
    cropped, given margins), in one process or several; without, the lines as given."""
    image = _sloping_line(-6.0)
    records = [LineRecord(image, "a", str(k)) for k in range(batching.DECODE_CHUNK * workers)]
    alphabet = Alphabet.from_texts(["a"])
    read = LineDataset(records, alphabet, 64, workers=workers, max_slope=2.0, min_ink_height=0.45, margin=0.1)
    want = prepare_for_reading(image, 64, max_slope=2.0, min_ink_height=0.45, margin=0.1)
    assert read.widths[-1] == want.shape[1] and np.array_equal(unpack_line(read.lines[-1], 64), want)
    plain = LineDataset(records[:1], alphabet, 64)
    assert np.array_equal(unpack_line(plain.lines[0], 64), prepare_line(image, 64))


def test_a_shared_dataset_reads_the_same_lines_from_the_mapped_file(tmp_path):
    """What DDP ranks do: one process decodes and shares, another maps the file; same items, and
    unreadable lines are left out the same way."""
    records = load_dataset(IAM_MINI, split="train")
    records = [records[0], LineRecord(tmp_path / "missing.png", "gone", "x"), *records[1:]]
    alphabet = Alphabet.from_texts(r.text for r in records)
    first = LineDataset(records, alphabet, 32)
    want = [first[i][0].numpy() for i in range(len(first))]
    first.share(tmp_path / "lines.npy")
    second = LineDataset(records, alphabet, 32, shared=tmp_path / "lines.npy")
    assert len(first.skipped) == 1 and second.records == first.records and second.widths == first.widths
    for i, image in enumerate(want):
        assert np.array_equal(first[i][0].numpy(), image) and np.array_equal(second[i][0].numpy(), image)


@pytest.mark.parametrize(
    "angle,scale,shear", [(0.0, 1.0, 0.0), (1.5, 0.9, -15.0), (-1.2, 1.05, 12.0), (25.0, 0.7, 30.0)]
)
def test_affine_matches_torchvision(angle, scale, shear):
    """handwrite.augment does torchvision's geometry without importing it at training time."""
    tv = pytest.importorskip("torchvision.transforms.v2.functional")
    from handwrite.augment import affine

    x = torch.rand(1, 40, 150)
    ours = affine(x, angle=angle, scale=scale, shear=shear)
    theirs = tv.affine(
        x, angle=angle, translate=[0, 0], scale=scale, shear=[shear, 0.0], interpolation=tv.InterpolationMode.BILINEAR
    )
    assert torch.allclose(ours, theirs, atol=1e-4)  # the same arithmetic in another order: 2e-5 apart
    assert ((angle, scale, shear) == (0.0, 1.0, 0.0)) == torch.allclose(ours, x, atol=1e-4)


@pytest.mark.parametrize("size,sigma", [(3, 0.3), (3, 1.0), (33, 4.0)])
def test_blur_matches_torchvision(size, sigma):
    tv = pytest.importorskip("torchvision.transforms.v2.functional")
    from handwrite.augment import gaussian_blur

    x = torch.rand(1, 1, 64, 90)
    assert torch.allclose(gaussian_blur(x, size, sigma), tv.gaussian_blur(x, [size, size], [sigma, sigma]), atol=1e-6)


def test_elastic_matches_torchvision():
    """The displacement field torchvision's ElasticTransform(alpha=12, sigma=4) draws (blurred with
    33 taps) from the same generator state moves the pixels the same way."""
    tv = pytest.importorskip("torchvision.transforms.v2.functional")
    from handwrite.augment import elastic

    x = torch.rand(1, 1, 64, 90)
    torch.manual_seed(5)
    ours = elastic(x[0], alpha=12.0, sigma=4.0)
    torch.manual_seed(5)
    dx = tv.gaussian_blur(torch.rand(1, 1, 64, 90) * 2 - 1, [33, 33], [4.0, 4.0]) * 12.0 / 90
    dy = tv.gaussian_blur(torch.rand(1, 1, 64, 90) * 2 - 1, [33, 33], [4.0, 4.0]) * 12.0 / 64
    theirs = tv.elastic(x[0], torch.cat([dx, dy], 1).permute(0, 2, 3, 1), interpolation=tv.InterpolationMode.BILINEAR)
    assert torch.allclose(ours, theirs, atol=1e-4)
    assert not torch.allclose(ours, x[0], atol=1e-2)


def test_decoding_in_processes_keeps_the_order_and_the_unreadable_lines_out(tmp_path, monkeypatch):
    """``workers`` > 1 reads the images in a process pool: the same lines, widths and skipped
    reasons, in the records' order, as reading them here."""
    monkeypatch.setattr(batching, "DECODE_CHUNK", 2)  # a pool even for a handful of lines
    records = load_dataset(IAM_MINI, split="train")
    records = [records[0], LineRecord(tmp_path / "missing.png", "gone", "x"), *records[1:], *records[:3]]
    alphabet = Alphabet.from_texts(r.text for r in records)
    here = LineDataset(records, alphabet, 32)
    pooled = LineDataset(records, alphabet, 32, workers=2)
    assert len(records) >= 2 * 2 and pooled.skipped == here.skipped and len(here.skipped) == 1
    assert pooled.records == here.records and pooled.kept == here.kept and pooled.widths == here.widths
    assert pooled.lines == here.lines
