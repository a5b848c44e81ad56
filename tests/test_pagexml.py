"""PAGE XML and ALTO: reading lines from real exports, cutting them out, writing results back."""

import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import FIXTURES
from lxml import etree
from PIL import Image
from typer.testing import CliRunner

from handwrite.cli import app
from handwrite.datasets import ReadReport, detect_format, load_dataset
from handwrite.errors import HandwriteError
from handwrite.pagexml import (
    ABOVE,
    BELOW,
    LineCrop,
    crop_line,
    line_polygon,
    line_spacing,
    page_lines,
    read_page_file,
)
from handwrite.preprocess import load_line

runner = CliRunner()
ALTO4 = FIXTURES / "poilus-alto"  # eScriptorium ALTO 4.2 export (real, downscaled)
PAGE2019 = FIXTURES / "timeus-page"  # eScriptorium PAGE 2019 export (real, downscaled), XML in page/
TRANSKRIBUS = FIXTURES / "transkribus-page"  # Transkribus PAGE 2013 export (real, unchanged)
XSD = FIXTURES / "xsd"

PAGE2013 = """<?xml version="1.0" encoding="UTF-8"?>
<pc:PcGts xmlns:pc="http://schema.primaresearch.org/PAGE/gts/pagecontent/2013-07-15">
  <pc:Metadata><pc:Creator>Transkribus</pc:Creator><pc:Created>2020-01-01T00:00:00</pc:Created>
    <pc:LastChange>2020-01-01T00:00:00</pc:LastChange>
    <pc:TranskribusMetadata docId="1" pageId="2" pageNr="1"/></pc:Metadata>
  <pc:Page imageFilename="scans/page.tif" imageWidth="{w}" imageHeight="{h}">
    <pc:ReadingOrder><pc:OrderedGroup id="ro" caption="Regions reading order">
      <pc:RegionRefIndexed index="1" regionRef="r1"/><pc:RegionRefIndexed index="0" regionRef="r2"/>
    </pc:OrderedGroup></pc:ReadingOrder>
    <pc:TextRegion id="r1" custom="readingOrder {{index:1;}}">
      <pc:Coords points="0,0 {w},0 {w},{h} 0,{h}"/>
      <pc:TextLine id="l2" custom="readingOrder {{index:1;}}">
        <pc:Coords points="{box2}"/><pc:Baseline points="{base2}"/>
        <pc:TextEquiv index="2"><pc:Unicode>not this</pc:Unicode></pc:TextEquiv>
        <pc:TextEquiv index="1"><pc:Unicode>third line</pc:Unicode></pc:TextEquiv>
      </pc:TextLine>
      <pc:TextLine id="l1" custom="readingOrder {{index:0;}}">
        <pc:Coords points="{box1}"/>
        <pc:TextEquiv><pc:Unicode>second line</pc:Unicode></pc:TextEquiv>
      </pc:TextLine>
      <pc:TextLine id="empty"><pc:Coords points="{box1}"/><pc:TextEquiv><pc:Unicode> </pc:Unicode></pc:TextEquiv></pc:TextLine>
    </pc:TextRegion>
    <pc:TextRegion id="r2">
      <pc:Coords points="0,0 10,0 10,10 0,10"/>
      <pc:TextLine id="l0"><pc:Coords points="{box0}"/><pc:TextEquiv><pc:Unicode>first line</pc:Unicode></pc:TextEquiv></pc:TextLine>
    </pc:TextRegion>
  </pc:Page>
</pc:PcGts>
"""


def _box(x0, y0, x1, y1):
    return f"{x0},{y0} {x1},{y0} {x1},{y1} {x0},{y1}"


def _page2013(folder: Path) -> Path:
    """A Transkribus-style PAGE 2013 file (prefixed namespace, custom reading order) over a real page
    image, saved as PNG although the XML names scans/page.tif (exports disagree on both)."""
    folder.mkdir(parents=True, exist_ok=True)
    image = Image.open(ALTO4 / "TestamentsDePoilus_will_AD78_0009-1.jpg").convert("L")
    image.save(folder / "page.png")
    w, h = image.size
    text = PAGE2013.format(
        w=w,
        h=h,
        box0=_box(50, 60, 400, 110),
        box1=_box(50, 130, 400, 180),
        box2=_box(50, 200, 400, 250),
        base2="50,240 400,240",
    )
    (folder / "page.xml").write_text(text, encoding="utf-8")
    return folder / "page.xml"


def test_real_escriptorium_alto4_export():
    page = read_page_file(ALTO4 / "TestamentsDePoilus_will_AD78_0009-1.xml")
    assert page.flavour == "alto" and page.namespace.endswith("ns-v4#")
    assert [line.text for line in page.lines] == ["Madame Guyot Jeanne", "Sorel-le-Grand", "par Fins", "(Somme)"]
    assert all(line.polygon and line.baseline for line in page.lines)
    records = load_dataset(ALTO4)
    assert detect_format(ALTO4) == "alto" and len(records) == 4
    assert all(load_line(r.image, 64).shape[0] == 64 for r in records)


def test_real_escriptorium_page2019_export_with_image_one_folder_up():
    records = load_dataset(PAGE2019)
    assert detect_format(PAGE2019) == "page"
    assert records[0].text.startswith("en outre aux dépens taxés") and len(records) == 6
    assert records[0].image.page == PAGE2019 / "IMG_20190620_122100.jpg"
    assert records[0].id == "page/IMG_20190620_122100:r1l2"


def test_real_transkribus_page2013_export():
    xml = TRANSKRIBUS / "170025120000003,0074.xml"
    doc = etree.parse(str(xml))
    assert _schema("page2013").validate(doc)  # the fixture is what Transkribus wrote, valid PAGE 2013
    page = read_page_file(xml)
    assert page.flavour == "page" and page.namespace.endswith("2013-07-15") and len(page.lines) == 44
    # Regions in the ReadingOrder's order: the folio number, the main text, a margin note, then the
    # second entry; lines in each region by their custom readingOrder index.
    assert [page.lines[i].text for i in (0, 1, 26, 27)] == [
        "$pag:39",
        "$-nor su hijo, De todos sus bienes, con los pactos",
        "$tip:Clausula $tip:hered.$^ria$.hereditaria",
        "En seis Julio mil Sett.$^s$.Setecientos y Sesenta y",
    ]
    assert all(line.polygon and line.baseline for line in page.lines)
    records = load_dataset(TRANSKRIBUS)
    assert detect_format(TRANSKRIBUS) == "page" and len(records) == 44
    assert records[1].image.page == TRANSKRIBUS / "170025120000003,0074.jpg"
    assert all(load_line(r.image, 64).shape[0] == 64 for r in records)


def test_baseline_geometry_cuts_the_band_below_transkribus_polygons(tmp_path):
    """Transkribus' polygons end a few pixels under the baseline; --geometry baseline cuts the band,
    which reaches 0.35 line spacings below it (room for descenders); the default keeps the polygon."""
    xml = TRANSKRIBUS / "170025120000003,0074.xml"
    by_polygon, by_band = page_lines(xml), page_lines(xml, "baseline")
    assert len(by_polygon.crops) == len(by_band.crops) == 44
    spacing = line_spacing(by_band.page)
    for (line, polygon_crop), (_, band_crop) in zip(by_polygon.crops, by_band.crops):
        assert polygon_crop.polygon == line.polygon
        assert band_crop.polygon == line_polygon(line, spacing, "baseline") != line.polygon
        below = max(y for _, y in line.baseline)
        assert max(y for _, y in line.polygon) - below <= 5  # what Transkribus drew
        assert max(y for _, y in band_crop.polygon) - below == pytest.approx(BELOW * spacing)
    assert len(load_dataset(TRANSKRIBUS, geometry="baseline")) == 44
    with pytest.raises(HandwriteError, match="unknown line geometry 'band'; choose one of polygon, baseline"):
        page_lines(xml, "band")
    result = runner.invoke(
        app, ["eval", str(TRANSKRIBUS), "--geometry", "baseline", "--decoder", "greedy", "--json", "-q"]
    )
    assert result.exit_code == 0 and '"lines": 44' in result.stdout, result.output
    result = runner.invoke(app, ["transcribe", str(xml), "--geometry", "baseline", "-o", str(tmp_path), "-q"])
    assert result.exit_code == 0 and len(result.stdout.splitlines()) == 44, result.output
    assert _schema("page2013").validate(etree.parse(str(tmp_path / xml.name)))


def test_single_xml_file_is_a_dataset():
    xml = ALTO4 / "TestamentsDePoilus_will_AD78_0009-1.xml"
    assert detect_format(xml) == "alto" and len(load_dataset(xml)) == 4


def test_page2013_prefixed_reading_order_text_choice_and_image_lookup(tmp_path):
    xml = _page2013(tmp_path)
    report = ReadReport()
    records = load_dataset(tmp_path, report=report)
    # r2 comes first by the ReadingOrder; inside r1 the lines' custom readingOrder index decides.
    assert [r.text for r in records] == ["first line", "second line", "third line"]
    assert report.empty == 1 and report.problems == []
    assert records[0].image.page == tmp_path / "page.png"
    assert detect_format(xml) == "page"


def test_crop_paints_outside_the_polygon_with_the_paper_tone():
    found = page_lines(ALTO4 / "TestamentsDePoilus_will_AD78_0009-1.xml")
    crop = found.crops[0][1]
    image = np.asarray(crop_line(crop))
    corners = [image[0, 0], image[0, -1], image[-1, 0], image[-1, -1]]
    page = np.asarray(Image.open(crop.page).convert("L"), dtype=float)
    # Paper, not white or black: close to the page's median tone.
    assert all(abs(float(c) - np.median(page)) < 40 for c in corners), corners
    assert 0 < min(corners) and max(corners) < 255


def test_baseline_band_rule_and_box_fallback():
    from handwrite.pagexml import TextLine

    base = TextLine("b", "x", None, ((10.0, 100.0), (200.0, 100.0)), None, None)
    poly = line_polygon(base, spacing=40)
    ys = [p[1] for p in poly]
    assert min(ys) == pytest.approx(100 - ABOVE * 40) and max(ys) == pytest.approx(100 + BELOW * 40)
    box = TextLine("c", "x", None, None, (5, 6, 50, 30), None)
    assert line_polygon(box, 40) == ((5, 6), (50, 6), (50, 30), (5, 30))
    degenerate = TextLine("d", "x", ((1.0, 1.0), (2.0, 2.0), (3.0, 3.0)), None, None, None)
    assert line_polygon(degenerate, 40) is None


ALTO2 = """<?xml version="1.0" encoding="UTF-8"?>
<alto xmlns="http://www.loc.gov/standards/alto/ns-v2#">
  <Description><MeasurementUnit>pixel</MeasurementUnit>
    <sourceImageInformation><fileName>C:\\\\export\\\\page.jpg</fileName></sourceImageInformation></Description>
  <Layout><Page ID="p" WIDTH="{w}" HEIGHT="{h}" PHYSICAL_IMG_NR="1"><PrintSpace>
    <TextBlock ID="b">
      <TextLine ID="t1" HPOS="50" VPOS="60" WIDTH="300" HEIGHT="50" BASELINE="100">
        <String CONTENT="pre" /><HYP CONTENT="-"/>
      </TextLine>
      <TextLine ID="t2" HPOS="50" VPOS="130" WIDTH="300" HEIGHT="50">
        <String CONTENT="two"/><SP/><String CONTENT="words"/><String CONTENT="more"/>
      </TextLine>
      <TextLine ID="nocoords"><String CONTENT="lost"/></TextLine>
      <TextLine ID="outside" HPOS="5000" VPOS="5000" WIDTH="30" HEIGHT="30"><String CONTENT="far"/></TextLine>
    </TextBlock></PrintSpace></Page></Layout>
</alto>
"""


def test_alto2_boxes_words_and_line_problems(tmp_path):
    image = Image.open(ALTO4 / "TestamentsDePoilus_will_AD78_0009-1.jpg")
    image.save(tmp_path / "page.jpg")
    (tmp_path / "page.xml").write_text(ALTO2.format(w=image.width, h=image.height), encoding="utf-8")
    report = ReadReport()
    records = load_dataset(tmp_path, report=report)
    assert [r.text for r in records] == ["pre-", "two words more"]
    assert any("nocoords" in p and "no coordinates" in p for p in report.problems)
    assert any("outside" in p and "outside" in p for p in report.problems)
    assert all(str(tmp_path / "page.xml") in p for p in report.problems)


def test_splits_by_subfolder_and_by_list(tmp_path):
    for split in ("train", "validation"):
        shutil.copytree(ALTO4, tmp_path / "by-folder" / split)
    assert len(load_dataset(tmp_path / "by-folder", split="validation")) == 4
    listed = tmp_path / "listed"
    shutil.copytree(ALTO4, listed / "a")
    _page2013(listed / "b")
    (listed / "train.txt").write_text("a/TestamentsDePoilus_will_AD78_0009-1.jpg\n", encoding="utf-8")  # a page image
    (listed / "validation.txt").write_text("b/page.xml\n", encoding="utf-8")  # an XML file
    assert len(load_dataset(listed, split="train")) == 4
    assert [r.text for r in load_dataset(listed, split="validation")][0] == "first line"
    (listed / "test.txt").write_text("nothing-here\n", encoding="utf-8")
    with pytest.raises(HandwriteError, match="nothing-here"):
        load_dataset(listed, split="test")


@pytest.mark.parametrize(
    "content, problem",
    [
        (b"<alto><Layout><Page", "not well-formed XML"),
        (
            '<?xml version="1.0" encoding="UTF-8"?><alto><Layout><Page WIDTH="10" HEIGHT="10"><TextLine ID="x"><String CONTENT="caf\xe9"/></TextLine></Page></Layout></alto>'.encode(
                "latin-1"
            ),
            "not well-formed XML",
        ),
        (b"<html><body/></html>", "neither PAGE XML nor ALTO"),
    ],
)
def test_bad_page_files_are_one_clear_error(tmp_path, content, problem):
    bad = tmp_path / "bad.xml"
    bad.write_bytes(content)
    with pytest.raises(HandwriteError, match=problem) as e:
        read_page_file(bad)
    assert str(bad) in str(e.value)


def test_a_bad_file_in_a_collection_leaves_the_rest_readable(tmp_path):
    shutil.copytree(ALTO4, tmp_path, dirs_exist_ok=True)
    (tmp_path / "broken.xml").write_bytes(b"<alto xmlns='http://www.loc.gov/standards/alto/ns-v4#'><Layout>")
    (tmp_path / "noimage.xml").write_text(
        (ALTO4 / "TestamentsDePoilus_will_AD78_0009-1.xml")
        .read_text(encoding="utf-8")
        .replace("TestamentsDePoilus_will_AD78_0009-1.jpg", "elsewhere.jpg"),
        encoding="utf-8",
    )
    report = ReadReport()
    records = load_dataset(tmp_path, "alto", report=report)
    assert len(records) == 4
    assert any("broken.xml" in p and "well-formed" in p for p in report.problems)
    assert any("noimage.xml" in p and "not found" in p for p in report.problems)


def test_unknown_namespace_still_reads_page_elements(tmp_path):
    xml = _page2013(tmp_path)
    xml.write_text(
        xml.read_text(encoding="utf-8").replace("pagecontent/2013-07-15", "pagecontent/2099-01-01"), encoding="utf-8"
    )
    assert [r.text for r in load_dataset(tmp_path)][0] == "first line"


def test_self_intersecting_polygon_is_cut_without_error(tmp_path):
    crop = LineCrop(
        tmp_path / "x.xml",
        "bow",
        ALTO4 / "TestamentsDePoilus_will_AD78_0009-1.jpg",
        ((50, 50), (300, 120), (300, 50), (50, 120)),
    )
    assert crop_line(crop).size == (300 - 50 + 9, 120 - 50 + 9)


# --- schemas and writing ------------------------------------------------------------------


def _schema(flavour: str) -> etree.XMLSchema:
    if flavour == "page":
        return etree.XMLSchema(etree.parse(str(XSD / "pagecontent-2019-07-15.xsd")))
    if flavour == "page2013":
        return etree.XMLSchema(etree.parse(str(XSD / "pagecontent-2013-07-15.xsd")))
    # alto-4-4.xsd imports XLink from the web; point it at the local copy.
    source = (
        (XSD / "alto-4-4.xsd")
        .read_text(encoding="utf-8")
        .replace("http://www.loc.gov/standards/xlink/xlink.xsd", (XSD / "xlink.xsd").resolve().as_uri())
    )
    return etree.XMLSchema(etree.fromstring(source.encode("utf-8"), base_url=XSD.resolve().as_uri() + "/"))


@pytest.fixture(scope="module")
def tiny_model(trained):
    """The suite's tiny trained model: it spells something on any line, which the writers need."""
    return trained[0] / "best.pt"


@pytest.mark.parametrize("source, flavour", [(ALTO4, "alto"), (PAGE2019, "page"), (TRANSKRIBUS, "page2013")])
def test_transcribe_writes_a_valid_copy_and_reads_back(tiny_model, tmp_path, source, flavour):
    work = tmp_path / "in"
    shutil.copytree(source, work)
    before = {p: p.read_bytes() for p in work.rglob("*.xml")}
    out = tmp_path / "out"
    result = runner.invoke(
        app, ["transcribe", "-m", str(tiny_model), str(work), "-o", str(out), "-q", "--decoder", "greedy"]
    )
    assert result.exit_code == 0, result.output
    assert {p: p.read_bytes() for p in work.rglob("*.xml")} == before  # inputs untouched
    (written,) = list(out.glob("*.xml"))
    schema = _schema(flavour)
    assert schema.validate(etree.parse(str(written))), schema.error_log
    original, new = read_page_file(next(iter(before))), read_page_file(written)
    assert [line.id for line in new.lines] == [line.id for line in original.lines]
    assert [line.polygon for line in new.lines] == [line.polygon for line in original.lines]
    printed = [row.split("\t", 1)[1] for row in result.stdout.splitlines()]
    assert [line.text for line in new.lines] == printed
    # One Glyph per printed character but spaces, one word element per word.
    doc = etree.parse(str(written))
    assert doc.xpath("count(//*[local-name()='Glyph'])") == sum(len(t.replace(" ", "")) for t in printed) > 0
    words = "String" if flavour == "alto" else "Word"
    assert doc.xpath(f"count(//*[local-name()='{words}'])") == sum(len(t.split()) for t in printed)


def test_transcribe_in_place_and_refusals(tiny_model, tmp_path):
    shutil.copytree(ALTO4, tmp_path / "in")
    xml = tmp_path / "in" / "TestamentsDePoilus_will_AD78_0009-1.xml"
    no_out = runner.invoke(app, ["transcribe", "-m", str(tiny_model), str(xml), "-q"])
    assert no_out.exit_code == 2 and "--out DIR" in no_out.output
    same = runner.invoke(app, ["transcribe", "-m", str(tiny_model), str(xml), "-o", str(xml.parent), "-q"])
    assert same.exit_code == 2 and "overwritten" in same.output
    before = xml.read_bytes()
    done = runner.invoke(
        app, ["transcribe", "-m", str(tiny_model), str(xml), "--in-place", "-q", "--decoder", "greedy"]
    )
    assert done.exit_code == 0 and xml.read_bytes() != before
    assert _schema("alto").validate(etree.parse(str(xml)))


def test_transcribe_page_with_missing_image_fails_alone(tiny_model, tmp_path):
    shutil.copytree(ALTO4, tmp_path / "in")
    (tmp_path / "in" / "TestamentsDePoilus_will_AD78_0009-1.jpg").rename(tmp_path / "in" / "moved.jpg")
    result = runner.invoke(
        app, ["transcribe", "-m", str(tiny_model), str(tmp_path / "in"), "-o", str(tmp_path / "o"), "-q"]
    )
    assert result.exit_code == 2 and "not found" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "o").exists() or not list((tmp_path / "o").iterdir())


@pytest.mark.parametrize("flavour", ["alto", "page"])
def test_line_images_written_as_xml(tiny_model, tmp_path, flavour):
    line = tmp_path / "line.png"
    crop_line(page_lines(ALTO4 / "TestamentsDePoilus_will_AD78_0009-1.xml").crops[0][1]).save(line)
    result = runner.invoke(
        app,
        [
            "transcribe",
            "-m",
            str(tiny_model),
            str(line),
            "--output",
            flavour,
            "-o",
            str(tmp_path / "xml"),
            "-q",
            "--decoder",
            "greedy",
        ],
    )
    assert result.exit_code == 0, result.output
    written = tmp_path / "xml" / "line.xml"
    assert _schema(flavour).validate(etree.parse(str(written))), _schema(flavour).error_log
    # handwrite reads its own output back: same text, and the line image found beside it.
    shutil.copy(line, tmp_path / "xml" / "line.png")
    assert read_page_file(written).lines[0].text == result.stdout.split("\t", 1)[1].strip()


def test_eval_and_train_on_page_files(tiny_model, tmp_path):
    for source, lines in ((PAGE2019, 6), (TRANSKRIBUS, 44)):
        result = runner.invoke(app, ["eval", "-m", str(tiny_model), str(source), "--json", "-q", "--decoder", "greedy"])
        assert result.exit_code == 0, result.output
        assert f'"lines": {lines}' in result.stdout
    run = runner.invoke(
        app,
        [
            "train",
            str(ALTO4),
            str(TRANSKRIBUS),
            "--val",
            str(PAGE2019),
            "-o",
            str(tmp_path / "run"),
            "--max-steps",
            "2",
            "-q",
            "--height",
            "32",
            "--channels",
            "8,16",
            "--lstm-hidden",
            "8",
            "--lstm-layers",
            "1",
            "--width-pools",
            "2",
            "--workers",
            "0",
        ],
    )
    assert run.exit_code == 0, run.output


@pytest.mark.parametrize("angle", [0.0, -90.0, 35.0])
def test_steep_lines_are_turned_and_positions_map_back_to_the_page(tmp_path, angle):
    from handwrite.pagexml import to_page

    page = Image.new("L", (400, 500), 200)
    page.putpixel((120, 300), 0)  # one ink dot inside the line's polygon
    page.save(tmp_path / "p.png")
    crop = LineCrop(
        tmp_path / "p.xml", "l", tmp_path / "p.png", ((100, 100), (160, 100), (160, 400), (100, 400)), angle
    )
    line = np.asarray(crop_line(crop))
    if angle == -90.0:
        assert line.shape[1] > line.shape[0]  # a vertical line now lies horizontally
    v, u = np.unravel_index(np.argmin(line), line.shape)
    x, y = to_page(crop, (line.shape[1], line.shape[0]))(u, v)
    assert abs(x - 120) <= 2 and abs(y - 300) <= 2


def test_reader_turns_lines_with_steep_baselines(tmp_path):
    from handwrite.pagexml import STEEP

    xml = _page2013(tmp_path)
    xml.write_text(
        xml.read_text(encoding="utf-8").replace('points="50,240 400,240"', 'points="60,250 60,60"'), encoding="utf-8"
    )
    angles = {line.id: crop.angle for line, crop in page_lines(xml).crops}
    assert angles["l2"] == pytest.approx(-90.0) and angles["l0"] == 0.0 and STEEP < 90


def test_lm_build_lm_tune_and_synth_read_page_files(tiny_model, tmp_path):
    lm = tmp_path / "lm.arpa"
    built = runner.invoke(app, ["lm", "build", str(ALTO4), str(PAGE2019), "--order", "3", "-o", str(lm)])
    assert built.exit_code == 0, built.output
    assert '"lines": 10' in built.stdout
    tuned = runner.invoke(
        app,
        [
            "lm",
            "tune",
            "-m",
            str(tiny_model),
            str(PAGE2019),
            "--lm",
            str(lm),
            "--weights",
            "0.5",
            "--bonuses",
            "0",
            "--no-save",
            "-q",
        ],
    )
    assert tuned.exit_code == 0, tuned.output
    synth = runner.invoke(app, ["synth", str(tmp_path / "s"), "--lines", "4", "--text", str(ALTO4), "-q"])
    assert synth.exit_code == 0, synth.output
    drawn = (tmp_path / "s" / "ascii" / "lines.txt").read_text(encoding="utf-8")
    assert any(word in drawn for word in ("Madame", "Guyot", "Sorel-le-Grand", "Fins", "(Somme)"))


def test_transkribus_page2013_results_stay_valid_page2013(tiny_model, tmp_path):
    """Results written into a Transkribus-style PAGE 2013 file validate against the 2013 schema, apart
    from Transkribus' own TranskribusMetadata element, which the input carries and the copy keeps."""
    xml = _page2013(tmp_path / "in")
    out = tmp_path / "out"
    r = runner.invoke(app, ["transcribe", "-m", str(tiny_model), str(xml), "-o", str(out), "-q", "--decoder", "greedy"])
    assert r.exit_code == 0, r.output
    doc = etree.parse(str(out / "page.xml"))
    assert doc.xpath("count(//*[local-name()='TranskribusMetadata'])") == 1  # kept
    for el in doc.xpath("//*[local-name()='TranskribusMetadata']"):
        el.getparent().remove(el)
    schema = _schema("page2013")
    assert schema.validate(doc), schema.error_log
    printed = [row.split("\t", 1)[1] for row in r.stdout.splitlines()]
    assert [line.text for line in read_page_file(out / "page.xml").lines] == printed and len(printed) == 4
