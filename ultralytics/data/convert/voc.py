"""Pascal VOC reader (LabelImg, CVAT): XML files in Annotations/ (images in JPEGImages/) or beside the images.

XML is parsed with defusedxml: a file with a DTD, entity declarations or external references is refused
(a problem row `unsafe_xml`), so untrusted annotations cannot expand entities or read local files.
Coordinates are taken as written (no 1-based shift). ImageSets/Main/{train,val,test}.txt fix the split
of the images they list. `difficult=1` objects are kept and counted.
"""

from __future__ import annotations

import os
from pathlib import Path
from xml.etree.ElementTree import ParseError

import defusedxml
import defusedxml.ElementTree as DET

from ultralytics.data.convert.common import (BadNumber, Box, Item, NotRegularFile, Source, find_image, finite,
                                          outside, read_regular, walk)


def xml_files(root: Path) -> list[Path]:
    """Every .xml file under root (sorted; hidden folders skipped)."""
    return [p for p in walk(root) if p.name.lower().endswith(".xml")]


def _imagesets(root: Path) -> dict[str, str]:
    """{image stem: split} from ImageSets/Main/{train,val,test}.txt when present."""
    out = {}
    main = root / "ImageSets" / "Main"
    for split in ("train", "val", "test"):
        f = main / f"{split}.txt"
        if f.is_file():
            for line in f.read_text(encoding="utf-8-sig").split("\n"):
                if line.split():
                    out[line.split()[0]] = split
    return out


def _num(el, tag: str) -> float:
    """Finite float value of a child element; ValueError names the tag when absent, BadNumber when not finite."""
    t = el.findtext(tag)
    if t is None:
        raise ValueError(f"<{tag}> missing")
    return finite(t, f"<{tag}>")


def read_voc(root: str | Path, images: str | Path | None = None) -> Source:
    """Read a VOC folder -> Source."""
    root = Path(root)
    src = Source("voc")
    sets = _imagesets(root)
    for xf in xml_files(root):
        if outside(xf, root):
            src.problem(xf, "outside_source", f"a link to {os.path.realpath(xf)}, outside {root}; not read")
            continue
        try:
            ann = DET.fromstring(read_regular(xf), forbid_dtd=True)
        except NotRegularFile as e:
            src.problem(xf, "not_regular_file", str(e))
            continue
        except defusedxml.DefusedXmlException as e:
            src.problem(xf, "unsafe_xml", f"{type(e).__name__}: refused (DTD, entity or external reference)")
            continue
        except (ParseError, OSError) as e:
            src.problem(xf, "malformed_xml", str(e))
            continue
        if ann.tag != "annotation":
            src.problem(xf, "not_voc_xml", f"root element <{ann.tag}>, not <annotation>; skipped")
            continue
        fname = (ann.findtext("filename") or "").strip()
        folders = [Path(images)] if images else []
        folders += [xf.parent.parent / "JPEGImages", xf.parent, root / "JPEGImages", root]
        im = find_image(fname, folders) if fname else None
        im = im or find_image(xf.stem, folders) or (folders[0] / (fname or xf.stem))
        size = None
        if ann.find("size") is not None:
            try:
                size = (int(_num(ann.find("size"), "width")), int(_num(ann.find("size"), "height")))
            except BadNumber as e:
                src.problem(xf, "bad_number", f"<size>: {e}; the image's own size is used")
            except ValueError:
                size = None
        item = Item(image=im, size=size if size and min(size) > 0 else None, split=sets.get(xf.stem),
                    source=str(xf))
        for k, obj in enumerate(ann.findall("object"), start=1):
            name = (obj.findtext("name") or "").strip()
            bb = obj.find("bndbox")
            try:
                if not name or bb is None:
                    raise ValueError("<name> or <bndbox> missing")
                box = Box(name, _num(bb, "xmin"), _num(bb, "ymin"), _num(bb, "xmax"), _num(bb, "ymax"),
                          difficult=(obj.findtext("difficult") or "0").strip() == "1")
            except BadNumber as e:
                src.problem(xf, "bad_number", f"object {k} {name!r}: {e}")
                continue
            except ValueError as e:
                src.problem(xf, "malformed_object", f"object {k}: {e}")
                continue
            src.counts["difficult"] += box.difficult
            item.boxes.append(box)
        src.items.append(item)
    return src
