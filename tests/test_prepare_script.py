"""scripts/prepare_htr_united.py: the conversion of downloaded page collections into line pairs."""

import importlib.util
import shutil

from conftest import FIXTURES

spec = importlib.util.spec_from_file_location(
    "prepare_htr_united", FIXTURES.parents[1] / "scripts" / "prepare_htr_united.py"
)
prepare_htr_united = importlib.util.module_from_spec(spec)
spec.loader.exec_module(prepare_htr_united)


def _fixture_page(folder, name, image=True):
    """The ALTO fixture page (and its image, unless ``image`` is False) copied into ``folder`` as ``name``."""
    fixture = "TestamentsDePoilus_will_AD78_0009-1"
    for suffix in (".jpg", ".xml") if image else (".xml",):
        src = FIXTURES / "poilus-alto" / f"{fixture}{suffix}"
        (folder / f"{name}{suffix}").write_bytes(src.read_bytes().replace(fixture.encode(), name.encode()))


def test_lectaurep_leaves_printed_headings_out_and_holds_every_line_out_of_training(tmp_path):
    # A LECTAUREP-like checkout: the real ALTO fixture, its first line retyped as pre-printed.
    register = tmp_path / "src" / "lectaurep-repertoires" / "data" / "lectaurep-x-1"
    shutil.copytree(FIXTURES / "poilus-alto", register)
    xml = next(register.glob("*.xml"))
    text = xml.read_text(encoding="utf-8")
    text = text.replace("<Tags>", '<Tags><OtherTag ID="LT9" LABEL="printed" DESCRIPTION="line type printed"/>')
    text = text.replace(
        '<TextLine ID="eSc_line_703f3834" TAGREFS="LT1078"', '<TextLine ID="eSc_line_703f3834" TAGREFS="LT9"'
    )
    xml.write_text(text, encoding="utf-8")

    summary = prepare_htr_united.prepare("lectaurep", tmp_path / "src", tmp_path / "out")

    out = tmp_path / "out" / "lectaurep"
    kept = (out / "validation.txt").read_text(encoding="utf-8").split()
    texts = sorted((out / name.replace(".png", ".gt.txt")).read_text(encoding="utf-8").strip() for name in kept)
    assert texts == ["(Somme)", "Sorel-le-Grand", "par Fins"]  # not the printed "Madame Guyot Jeanne"
    assert (out / "train.txt").read_text(encoding="utf-8") == ""
    assert summary["train"] == 0 and summary["validation"] == 3 and summary["writers"] == 1
    assert all(name.startswith("lectaurep-x-1_") for name in kept)  # the writer prefix of adaptation_curve.sh


def test_lines_with_editorial_marks_are_left_out_and_superscripts_kept_as_typed():
    clean = prepare_htr_united.clean
    # CREMMA-MSS-19 and -20 mark a crossed-out word "<>": the line's ink holds a word its text lacks.
    assert clean("de la République de <> demander à l'Assemblée") is None
    assert clean("Je vis le maître de ceux qui <> la science") is None
    assert clean("barré # ici") is None and clean("un [[mot]] rayé") is None
    assert clean("le 1^er août, 2^f ,40") == "le 1er août, 2f ,40"
    assert clean("a < b > c") == "a < b > c"  # lone angle brackets are text


def test_page_names_with_dots_keep_every_line(tmp_path):
    # Peraire's pages are named like "test_B.12.japon3_0048.xml": the file names of their lines once ended
    # at the page name's first dot, and all the lines of a page were written over each other as one.
    data = tmp_path / "src" / "peraire-ground-truth" / "data" / "test"
    data.mkdir(parents=True)
    for n in (5, 12):
        _fixture_page(data, f"test_B.{n}.japon3")

    summary = prepare_htr_united.prepare("peraire", tmp_path / "src", tmp_path / "out")

    out = tmp_path / "out" / "peraire"
    kept = (out / "train.txt").read_text(encoding="utf-8").split()
    assert summary["train"] == len(kept) == len(set(kept)) == 8
    texts = sorted((out / name.replace(".png", ".gt.txt")).read_text(encoding="utf-8").strip() for name in kept)
    assert texts == sorted(["Madame Guyot Jeanne", "Sorel-le-Grand", "par Fins", "(Somme)"] * 2)


def test_poilus_holds_out_the_same_wills_whatever_page_images_the_checkout_lacks(tmp_path):
    # Three wills: one of the named validation wills, one training will, and one whose page image is missing
    # (the checkouts the models were built from lack 16 images). Picked by position among the wills that could
    # be read, the validation wills changed with the images a checkout held; named, they cannot.
    data = tmp_path / "src" / "CREMMA-AN-TestamentsDePoilus" / "data" / "batch-1"
    data.mkdir(parents=True)
    for will, image in (("AD78_0066-0", True), ("AD78_0009-1", True), ("AD95_0011-0", False)):
        _fixture_page(data, f"TestamentsDePoilus_will_{will}", image)

    summary = prepare_htr_united.prepare("poilus", tmp_path / "src", tmp_path / "out")

    out = tmp_path / "out" / "poilus"
    held = (out / "validation.txt").read_text(encoding="utf-8").split()
    trained = (out / "train.txt").read_text(encoding="utf-8").split()
    assert summary["validation"] == len(held) == 4 and summary["train"] == len(trained) == 4
    assert all("_will_AD78_0066-0_" in name for name in held)
    assert all("_will_AD78_0009-1_" in name for name in trained)


def test_typewritten_sets_conventions_underlines_and_handwriting_among_the_type():
    clean = prepare_htr_united.clean
    # Tapus Corpus: "_word" is an underlined word, "~~~" a handwritten word among the typed ones, "⟦...⟧" a
    # crossed-out one; EHRI types "½" where Hooker's transcriptions (and a keyboard) type "1/2".
    assert clean("le _Conseil _Municipal a décidé") == "le Conseil Municipal a décidé"
    assert clean("signé ~~~ ~~~") is None and clean("des ⟦blonds⟧ étains") is None
    assert clean("R. _ Les services que j'ai rendus") == "R. _ Les services que j'ai rendus"  # MSS-19's dash
    assert clean("9½ miles") == "91/2 miles"


def test_ehri_holds_out_whole_documents_and_tapus_pages_by_name(tmp_path):
    # EHRI: a document's pages are NAME_EN_01, NAME_EN_02, ...; all pages of a held-out document go to validation.
    data = tmp_path / "src" / "ehri-dataset" / "data" / "english"
    data.mkdir(parents=True)
    for page in ("EHRI-BF-19380509b_EN_01", "EHRI-BF-19380509b_EN_02", "EHRI-BF-19380718_EN_01"):
        _fixture_page(data, page)
    summary = prepare_htr_united.prepare("ehri", tmp_path / "src", tmp_path / "out")
    out = tmp_path / "out" / "ehri"
    held = (out / "validation.txt").read_text(encoding="utf-8").split()
    trained = (out / "train.txt").read_text(encoding="utf-8").split()
    assert summary["writers"] == 2 and len(held) == 8 and len(trained) == 4
    assert all(name.startswith("EHRI-BF-19380509b_EN_0") for name in held)
    assert all(name.startswith("EHRI-BF-19380718_EN_01") for name in trained)
    # Tapus: a folder is a document, but Europeana's random pages are grouped by a hash of their names.
    document = prepare_htr_united._tapus_document
    assert document("12148-btv1b10581912k/16_7e494_default:eSc_line_1") == "12148-btv1b10581912k"
    pages = [f"europeana-random-selection/page_{n}:eSc_line_1" for n in range(40)]
    groups = [document(rid) for rid in pages]
    assert set(groups) == {f"europeana-{k}" for k in range(5)}
    # Pinned: a change of the grouping would move pages between train and validation unnoticed.
    page = "europeana-random-selection/2020601_https___1914_1918_europeana_eu_contributions_14396:eSc_line_1"
    assert document(page) == "europeana-1"
