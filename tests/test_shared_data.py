"""Checks against the full development sets in ../shared/data, skipped where they are absent."""

from collections import Counter

from conftest import SHARED_DATA, needs_shared

from handwrite.datasets import load_dataset

HOOKER = SHARED_DATA / "iam-hooker"
COPISTE = SHARED_DATA / "copiste-fr"


def _listed(path):
    return [row.strip() for row in path.read_text(encoding="utf-8").splitlines() if row.strip()]


@needs_shared("iam-hooker")
def test_hooker_counts_match_split_lists_and_status_column():
    everything = load_dataset(HOOKER, include_err=True)
    assert len(everything) == 6916
    assert len(load_dataset(HOOKER)) == 6396  # the README's count of 'ok' rows
    for split in ("train", "validation", "test"):
        ids = _listed(HOOKER / "splits" / f"{split}.txt")
        records = load_dataset(HOOKER, split=split, include_err=True)
        assert [r.id for r in records] == sorted(ids, key=[r.id for r in everything].index)
    assert all(r.image.is_file() for r in everything)


@needs_shared("iam-hooker")
def test_hooker_text_matches_readme_inventory():
    chars = Counter("".join(r.text for r in load_dataset(HOOKER, include_err=True)))
    assert sum(chars.values()) == 198309 and len(chars) == 84
    assert {"£", "é", "∞"} <= set(chars)


@needs_shared("copiste-fr")
def test_copiste_pairs_and_manifest_agree():
    for split, n in (("train", 2690), ("validation", 312)):
        pairs = load_dataset(COPISTE, split=split)
        manifest = load_dataset(COPISTE / "manifest.tsv", split=split)
        assert len(pairs) == len(manifest) == n
        assert {(r.image, r.text) for r in pairs} == {(r.image, r.text) for r in manifest}


@needs_shared("iam-sample")
def test_genuine_iam_sample_reads():
    records = load_dataset(SHARED_DATA / "iam-sample", include_err=True)
    assert len(records) == 4
    assert all(r.image.is_file() for r in records)
    assert records[0].id == "a01-000u-00"
