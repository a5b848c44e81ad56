"""Make a small test fixture from a real PAGE/ALTO export: the page image downscaled (greyscale
JPEG) and every coordinate of the XML scaled to match; nothing else in the XML changes.

Usage: python scripts/make_page_fixtures.py XML IMAGE OUT_DIR/XML_NAME OUT_DIR/IMAGE_NAME SCALE
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from lxml import etree
from PIL import Image

# Attributes holding coordinates, by format: point lists and plain numbers.
POINT_ATTRS = {"points", "POINTS"}
NUMBER_ATTRS = {"imageWidth", "imageHeight", "HPOS", "VPOS", "WIDTH", "HEIGHT"}


def _scale_points(value: str, s: float) -> str:
    return re.sub(r"-?\d+(?:\.\d+)?", lambda m: str(round(float(m.group()) * s)), value)


def main() -> None:
    xml, image, xml_out, image_out, scale = sys.argv[1:6]
    s = float(scale)
    tree = etree.parse(xml)
    for el in tree.iter():
        if not isinstance(el.tag, str):
            continue
        for name, value in el.attrib.items():
            if name in POINT_ATTRS or name == "BASELINE":
                el.set(name, _scale_points(value, s))
            elif name in NUMBER_ATTRS:
                el.set(name, str(round(float(value) * s)))
    Path(xml_out).parent.mkdir(parents=True, exist_ok=True)
    Path(image_out).parent.mkdir(parents=True, exist_ok=True)
    tree.write(xml_out, xml_declaration=True, encoding="UTF-8")
    with Image.open(image) as im:
        small = im.convert("L").resize((round(im.width * s), round(im.height * s)), Image.Resampling.LANCZOS)
        small.save(image_out, quality=60)


if __name__ == "__main__":
    main()
