"""Cut the line images of HTR-United page collections into a pairs dataset for training.

Usage: python scripts/prepare_htr_united.py SOURCES_DIR OUT_DIR [COLLECTION ...]

SOURCES_DIR holds the repositories that scripts/fetch_htr_united.sh checked out
(one folder each). For every collection this reads the PAGE/ALTO files with
handwrite's own reader (the same crops `handwrite train DIR_OF_XML` would make),
normalises the transcription conventions to what a reader of the line would
type, and writes ``OUT_DIR/<collection>/<page>/<line>.png`` + ``.gt.txt`` with
writer-disjoint ``train.txt`` / ``validation.txt`` lists.

Conventions: ``^`` marks a superscript (``1^er``) and is dropped (``1er``), as is the ``_`` that
marks an underlined word (``_word``); ``½`` is typed ``1/2``, as in Hooker's transcriptions; lines
with crossed-out words (``#``, ``[[...]]``, ``<>``, ``⟦...⟧``), editorial marks (``⋎``, ``{``), unread
words (``XXX``), handwriting among typed words (``~~~``) or signs nobody types (``ȼ``) are left out,
since their images hold ink their text does not describe; so are the pre-printed headings of
LECTAUREP's registers.
"""

from __future__ import annotations

import re
import sys
import warnings
import zlib
from dataclasses import replace
from pathlib import Path

from PIL import Image

from handwrite.datasets import ReadReport, load_dataset, normalize_text
from handwrite.pagexml import local, read_page_file
from handwrite.preprocess import read_line_image

HEIGHT = 128  # stored crops: at most this high (the model reads 64), as in ../shared/data
DROP = re.compile(r"#|\[\[|⋎|\{|XXX|ȼ|<>|~~~|⟦")
UNDERLINED = re.compile(r"(?<!\S)_(?=\w)")  # Tapus Corpus: "_word" is an underlined word

# The 15 of 146 wills held out of training, by name. They were first picked as every 9th will in name order
# among those whose page images were there; the checkouts this project's models were built from lack 16 page
# images of 13 wills (9 of them whole), so a checkout with every image would have picked other wills (AD95_0011
# and AD95_0042 instead of AD95_0039 and AN_0326) and trained on validation wills. Named, the split is the same
# whatever images a checkout holds; wills missing here train there.
POILUS_HELD_OUT = tuple(
    f"TestamentsDePoilus_will_{will}"
    for will in (
        "AD78_0002", "AD78_0030", "AD78_0066", "AD95_0039", "AN_0025", "AN_0057", "AN_0082", "AN_0109",
        "AN_0157", "AN_0182", "AN_0201", "AN_0232", "AN_0259", "AN_0291", "AN_0326",
    )
)  # fmt: skip


def _tapus_document(rid: str) -> str:
    """The document of a Tapus Corpus line: its folder, or for the pages picked at random from Europeana one of
    five groups of them by a hash of the page's name (so that which are held out does not depend on which page
    images a checkout holds)."""
    folder, page = rid.split(":")[0].split("/")[:2]
    return f"europeana-{zlib.crc32(page.encode()) % 5}" if folder == "europeana-random-selection" else folder


# collection -> (folder inside SOURCES_DIR, function: record id -> writer, validation writers: their names, or
# None for all)
COLLECTIONS = {
    # One will = one hand (README of the repository).
    "poilus": (
        "CREMMA-AN-TestamentsDePoilus/data",
        lambda rid: re.sub(r"-\d+:.*$", "", rid.split("/")[-1]),
        POILUS_HELD_OUT,
    ),
    # One folder = one writer's letters or manuscript; two writers held out.
    "mss19": ("CREMMA-MSS-19/data", lambda rid: rid.split("/")[0], ("lettres-veuillot", "manuscrit-verne-20000")),
    # Court registers (clerks unknown): the 1878 register held out, by year.
    "timeus": ("timeuscorpus/data", lambda rid: rid.split("/")[0], ("cph_paris_tissage_1878",)),
    # One hand (the diarist): training only.
    "peraire": ("peraire-ground-truth/data", lambda rid: "peraire", ()),
    # Notaries' registers of deeds, 1830-1939: one folder = one hand (the random sets: about 10 and 3 hands).
    # Never trained on: all of it is validation, a source the mix has not seen (and one hand, Dufour's 100
    # pages, long enough for the adaptation curve's larger sizes).
    "lectaurep": ("lectaurep-repertoires/data", lambda rid: rid.split("/")[0], None),
    # Two 20th-century hands (a letter; Badinter's drafts of his 1981 speech), never trained on.
    "mss20": ("CREMMA-MSS-20/data", lambda rid: rid.split("/")[0], None),
    # One diarist's hand, 1914-15, never trained on.
    "celestine": ("dataset-celestine-doniau-danest/data", lambda rid: "celestine", None),
    # Typewritten English, 1938-43 (EHRI): one document (its pages ``NAME[_EN]_NN``), most likely one typewriter
    # and typist; three documents of three series held out.
    "ehri": (
        "ehri-dataset/data/english",
        lambda rid: re.sub(r"(_EN)?_\d+$", "", rid.split(":")[0].split("/")[-1]),
        ("EHRI-BF-19380509b", "EHRI-DR-19421116-US", "EHRI-ET-WL16560044"),
    ),
    # Typewritten French, 1896-1984 (Tapus Corpus): one folder = one document, but the pages picked at random from
    # Europeana (each from its own document) fall in five groups by their names; two documents and one group held out.
    "tapus": (
        "tapuscorpus/data",
        _tapus_document,
        ("12148-btv1b10581912k", "AN-96AP_1-dossier_1-pièces_1_à_202-début-du-journal-dactylographié", "europeana-0"),
    ),
}


def _printed_lines(root: Path) -> set[str]:
    """IDs of the ALTO text lines under ``root`` whose line type (TAGREFS) is labelled "printed"."""
    ids = set()
    for xml in root.rglob("*.xml"):
        elements = [e for e in read_page_file(xml).tree.iter() if isinstance(e.tag, str)]
        tags = {e.get("ID") for e in elements if local(e) == "OtherTag" and e.get("LABEL") == "printed"}
        ids |= {
            e.get("ID") for e in elements if local(e) == "TextLine" and tags & set((e.get("TAGREFS") or "").split())
        }
    return ids


def clean(text: str) -> str | None:
    if DROP.search(text):
        return None
    return normalize_text(UNDERLINED.sub("", text.replace("^", "")).replace("½", "1/2"))


def prepare(name: str, src: Path, out: Path) -> dict:
    folder, writer_of, held = COLLECTIONS[name]
    report = ReadReport()
    if name == "timeus":
        # PAGE and ALTO copies of the same pages: read the PAGE ones only.
        records = [
            replace(r, id=f"{sub.name}/{r.id}")
            for sub in sorted((src / folder).iterdir())
            if sub.is_dir()
            for r in load_dataset(sub / "page", "page", report=report)
        ]
    else:
        records = load_dataset(src / folder, "page", report=report)
    if name == "lectaurep":
        # The registers' pre-printed column headings are tagged "printed": not handwriting.
        printed = _printed_lines(src / folder)
        records = [r for r in records if r.id.split(":")[-1] not in printed]
    writers = sorted({writer_of(r.id) for r in records})
    held = set(writers if held is None else held)
    splits: dict[str, list[str]] = {"train": [], "validation": []}
    dropped = 0
    written: dict[str, str] = {}  # file stem -> the line id written there
    for r in records:
        text = clean(r.text)
        if not text:
            dropped += 1
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                im = read_line_image(r.image)
        except Exception as e:  # noqa: BLE001 - a bad line is reported and skipped, the rest kept
            print(f"skip {r.id}: {e}", file=sys.stderr)
            dropped += 1
            continue
        if im.height > HEIGHT:
            im = im.resize((max(1, round(im.width * HEIGHT / im.height)), HEIGHT), Image.Resampling.LANCZOS)
        # One flat file name per line. Appended, not Path.with_suffix: Peraire's page names hold dots
        # ("test_B.12.japon3_0048"), and with_suffix cut them there, so that its 2,475 lines were written
        # over each other as 48 files (the defaults of 2026-11-29 and 11-30 trained on those 48).
        stem = re.sub(r"[^\w.-]+", "_", r.id)
        if stem in written:
            raise SystemExit(f"{name}: lines {written[stem]!r} and {r.id!r} would both be written as {stem}.png")
        written[stem] = r.id
        (out / name).mkdir(parents=True, exist_ok=True)
        im.save(out / name / f"{stem}.png")
        (out / name / f"{stem}.gt.txt").write_text(text + "\n", encoding="utf-8")
        splits["validation" if writer_of(r.id) in held else "train"].append(f"{stem}.png")
    for split, rows in splits.items():
        (out / name / f"{split}.txt").write_text("".join(f"{p}\n" for p in rows), encoding="utf-8")
    return {
        "collection": name,
        "train": len(splits["train"]),
        "validation": len(splits["validation"]),
        "dropped": dropped,
        "empty": report.empty,
        "problems": len(report.problems),
        "writers": len(writers),
    }


def main() -> None:
    src, out = Path(sys.argv[1]), Path(sys.argv[2])
    for name in sys.argv[3:] or COLLECTIONS:
        print(prepare(name, src, out), flush=True)


if __name__ == "__main__":
    main()
