from pathlib import Path

import pytest
from conftest import COPISTE_MINI, IAM_MINI

from handwrite.datasets import LineRecord, detect_format, load_dataset, normalize_text
from handwrite.errors import HandwriteError


def test_iam_excludes_err_rows_by_default():
    records = load_dataset(IAM_MINI)
    assert len(records) == 8
    assert "h00-012-13" not in {r.id for r in records}


def test_iam_includes_err_rows_on_request():
    records = load_dataset(IAM_MINI, include_err=True)
    assert len(records) == 10
    by_id = {r.id: r for r in records}
    assert by_id["h00-015-10"].text == "If the"  # '|' becomes a space


def test_iam_record_fields_and_image_layout():
    r = {r.id: r for r in load_dataset(IAM_MINI)}["h00-000-18"]
    assert r.text == "of them."
    assert r.image == IAM_MINI / "lines" / "h00" / "h00-000" / "h00-000-18.png"
    assert r.image.is_file()


def test_iam_split_by_name_and_by_file():
    train = load_dataset(IAM_MINI, split="train")
    assert [r.id for r in train] == [
        "h00-000-18",
        "h00-007-10",
        "h00-017-10",
        "h01-022-06",
        "h01-035-02",
        "h01-037-01",
    ]  # h00-012-13 is listed but marked err
    assert len(load_dataset(IAM_MINI, split="train", include_err=True)) == 7
    by_file = load_dataset(IAM_MINI, split=str(IAM_MINI / "splits" / "validation.txt"), include_err=True)
    assert [r.id for r in by_file] == ["h02-044-02", "h00-015-10"]


def test_iam_split_list_may_name_whole_forms(tmp_path):
    forms = tmp_path / "forms.txt"
    forms.write_text("h00-000\nh01-035\n", encoding="utf-8")  # Aachen-style lists of form ids
    assert [r.id for r in load_dataset(IAM_MINI, split=str(forms))] == ["h00-000-18", "h01-035-02"]


def test_pairs_reader_whole_tree_and_split():
    records = load_dataset(COPISTE_MINI)
    assert len(records) == 4
    texts = {r.id: r.text for r in records}
    assert texts["imp_wikitexte_0083/eSc_line_a5d239a9"] == "à Prague."
    assert [r.text for r in load_dataset(COPISTE_MINI, split="validation")] == ["à Prague."]


def test_tsv_manifest_with_header_and_split_column():
    manifest = COPISTE_MINI / "manifest.tsv"
    records = load_dataset(manifest)
    assert len(records) == 4
    assert records[0] == LineRecord(
        COPISTE_MINI / "imp_wikitexte_0022/eSc_line_7bbc4d4d.png", "Aquitaine.", "imp_wikitexte_0022/eSc_line_7bbc4d4d"
    )
    assert [r.text for r in load_dataset(manifest, split="train")] == ["Aquitaine.", "12 genres.", "norvégien."]


def test_tsv_manifest_without_header(tmp_path):
    (tmp_path / "a.png").write_bytes(b"")
    (tmp_path / "m.tsv").write_text("a.png\thello  world\n\n", encoding="utf-8")
    assert load_dataset(tmp_path / "m.tsv") == [LineRecord(tmp_path / "a.png", "hello world", "a")]


def test_format_detection_and_override():
    assert detect_format(IAM_MINI) == "iam"
    assert detect_format(COPISTE_MINI) == "pairs"
    assert detect_format(COPISTE_MINI / "manifest.tsv") == "tsv"
    # The IAM folder holds no .gt.txt files, so forcing 'pairs' finds nothing.
    with pytest.raises(HandwriteError, match="no lines"):
        load_dataset(IAM_MINI, fmt="pairs")


def test_transcriptions_are_nfc():
    decomposed = "e\u0301te\u0301"
    assert normalize_text(decomposed) == "été"
    assert normalize_text("  a \t b ") == "a b"


@pytest.mark.parametrize(
    "setup, message",
    [
        (lambda p: p / "nowhere", "no such file"),
        (lambda p: p, "cannot tell the dataset format"),
    ],
)
def test_unusable_paths(tmp_path, setup, message):
    with pytest.raises(HandwriteError, match=message):
        load_dataset(setup(tmp_path))


def test_wrong_format_override_names_the_file():
    with pytest.raises(HandwriteError, match="lines.txt: cannot read"):
        load_dataset(COPISTE_MINI, fmt="iam")


def _iam(tmp_path: Path, rows: str) -> Path:
    (tmp_path / "ascii").mkdir()
    (tmp_path / "ascii" / "lines.txt").write_text("# header\n" + rows, encoding="utf-8")
    return tmp_path


def test_iam_malformed_row_names_file_and_line(tmp_path):
    root = _iam(tmp_path, "a01-000u-00 ok 154 19 408 746 1661 89 A|MOVE\nthis is not a row\n")
    with pytest.raises(HandwriteError, match=r"lines.txt:3: not an IAM line row"):
        load_dataset(root)


def test_iam_missing_transcription(tmp_path):
    root = _iam(tmp_path, "a01-000u-00 ok 154 19 408 746 1661 89 \n")
    with pytest.raises(HandwriteError, match="transcription missing for a01-000u-00"):
        load_dataset(root)


def test_pairs_missing_transcription_for_listed_image(tmp_path):
    (tmp_path / "x.png").write_bytes(b"")
    (tmp_path / "y.gt.txt").write_text("y", encoding="utf-8")
    (tmp_path / "train.txt").write_text("x.png\n", encoding="utf-8")
    with pytest.raises(HandwriteError, match=r"x.gt.txt: transcription missing"):
        load_dataset(tmp_path, split="train")


def test_tsv_row_without_text(tmp_path):
    (tmp_path / "m.tsv").write_text("a.png\tfine\nb.png\n", encoding="utf-8")
    with pytest.raises(HandwriteError, match=r"m.tsv:2: transcription missing"):
        load_dataset(tmp_path / "m.tsv")


def test_empty_dataset(tmp_path):
    root = _iam(tmp_path, "")
    with pytest.raises(HandwriteError, match="holds no lines"):
        load_dataset(root)


def test_unknown_split(tmp_path):
    with pytest.raises(HandwriteError, match="no split list for 'dev'"):
        load_dataset(IAM_MINI, split="dev")
