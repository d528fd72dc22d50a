#!/usr/bin/env python3
"""Extracts a compact TSV of the TR-181 Device:2 parameters from a flat BBF data-model XML.

Usage: tools/tr181_extract.py <tr-181-…-cwmp-full.xml> > crates/twin/data/tr181-cwmp.tsv

Columns: path template, TR-106 type, access (rw|ro), min, max, maxLength, enumerations (|-joined).
Empty fields mean "no constraint". List-valued parameters are strings without enum/range checks.
"""
import sys
import xml.etree.ElementTree as ET

PRIMS = {"string", "int", "unsignedInt", "long", "unsignedLong", "boolean", "dateTime",
         "base64", "hexBinary", "decimal"}


def local(tag):
    return tag.rsplit("}", 1)[-1]


def main(path):
    root = ET.parse(path).getroot()
    datatypes = {}
    for dt in root:
        if local(dt.tag) == "dataType":
            base = dt.get("base")
            prim = None
            for child in dt:
                if local(child.tag) in PRIMS:
                    prim = local(child.tag)
            datatypes[dt.get("name")] = (prim, base)

    def resolve(name, depth=0):
        prim, base = datatypes.get(name, (None, None))
        if prim:
            return prim
        if base and depth < 10:
            return resolve(base, depth + 1)
        return "string"

    rows = []
    for model in root:
        if local(model.tag) != "model":
            continue
        for obj in model:
            if local(obj.tag) != "object":
                continue
            prefix = obj.get("name")
            for param in obj:
                if local(param.tag) != "parameter":
                    continue
                access = "rw" if param.get("access") in ("readWrite", "writeOnceReadOnly") else "ro"
                syntax = next((c for c in param if local(c.tag) == "syntax"), None)
                ty, lo, hi, maxlen, enums, is_list = "string", "", "", "", [], False
                if syntax is not None:
                    for s in syntax:
                        t = local(s.tag)
                        if t == "list":
                            is_list = True
                        elif t in PRIMS:
                            ty = t
                            for c in s:
                                ct = local(c.tag)
                                if ct == "range":
                                    lo = c.get("minInclusive", lo)
                                    hi = c.get("maxInclusive", hi)
                                elif ct == "size" and c.get("maxLength"):
                                    maxlen = c.get("maxLength")
                                elif ct == "enumeration":
                                    enums.append(c.get("value"))
                        elif t == "dataType":
                            ty = resolve(c_ref(s))
                if is_list:
                    ty, lo, hi, enums = "string", "", "", []
                    maxlen = ""
                rows.append("\t".join([prefix + param.get("name"), ty, access, lo, hi, maxlen, "|".join(enums)]))
    out = sys.stdout
    out.write("# TR-181 Device:2 parameters extracted by tools/tr181_extract.py; see SOURCES.md\n")
    for r in rows:
        out.write(r + "\n")


def c_ref(el):
    return el.get("ref") or el.get("base") or ""


if __name__ == "__main__":
    main(sys.argv[1])
