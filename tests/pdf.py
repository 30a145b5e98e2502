"""The text of a reportlab PDF, for tests, without a PDF library: its content streams decoded,
and each string shown in an embedded TrueType subset mapped back to Unicode through the font's
ToUnicode CMap (the subset numbers its glyphs 0, 1, 2 …, so the bytes alone are not the text)."""

from __future__ import annotations

import base64
import re
import zlib

OBJECT = re.compile(rb"(\d+) 0 obj\s*(.*?)endobj", re.S)
STREAM = re.compile(rb"stream\r?\n(.*?)endstream", re.S)
TOKEN = re.compile(rb"/([A-Za-z0-9+_.-]+)\s+[\d.]+\s+Tf|\((?:\\.|[^\\)])*\)", re.S)
ESCAPES = {b"n": b"\n", b"r": b"\r", b"t": b"\t", b"b": b"\b", b"f": b"\f"}


def _stream(body: bytes) -> bytes | None:
    found = STREAM.search(body)
    if not found:
        return None
    data = found.group(1).strip()
    if b"ASCII85Decode" in body and data.endswith(b"~>"):
        data = base64.a85decode(data[:-2])
    if b"FlateDecode" in body:
        try:
            data = zlib.decompress(data)
        except zlib.error:
            return None
    return data


def _cmap(data: bytes) -> dict[int, str]:
    mapping: dict[int, str] = {}
    for block in re.findall(rb"beginbfchar(.*?)endbfchar", data, re.S):
        for code, uni in re.findall(rb"<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>", block):
            mapping[int(code, 16)] = bytes.fromhex(uni.decode()).decode("utf-16-be")
    for block in re.findall(rb"beginbfrange(.*?)endbfrange", data, re.S):
        for start, end, uni in re.findall(rb"<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>", block):
            first = int(uni, 16)
            for offset, code in enumerate(range(int(start, 16), int(end, 16) + 1)):
                mapping[code] = chr(first + offset)
    return mapping


def _literal(raw: bytes) -> bytes:
    out, i = bytearray(), 1
    while i < len(raw) - 1:
        char = raw[i : i + 1]
        if char != b"\\":
            out += char
            i += 1
            continue
        following = raw[i + 1 : i + 2]
        octal = re.match(rb"[0-7]{1,3}", raw[i + 1 : i + 4])
        if octal:
            out.append(int(octal.group(0), 8) & 0xFF)
            i += 1 + len(octal.group(0))
        else:
            out += ESCAPES.get(following, following)
            i += 2
    return bytes(out)


def pdf_fonts(pdf: bytes) -> set[str]:
    """The base font names the PDF uses (an embedded subset is named like AAAAAA+DejaVuSans)."""
    return {name.decode() for name in re.findall(rb"/BaseFont\s*/([^\s/>]+)", pdf)}


def pdf_text(pdf: bytes) -> str:
    """Every string the pages show, decoded, one per line."""
    objects = {int(number): body for number, body in OBJECT.findall(pdf)}
    fonts: dict[bytes, dict[int, str] | None] = {}  # a font's resource name (/F2+0) → its CMap
    for body in objects.values():
        name = re.search(rb"/Name /([A-Za-z0-9+_.-]+)", body)
        if b"/Type /Font" not in body or not name:
            continue
        to_unicode = re.search(rb"/ToUnicode (\d+) 0 R", body)
        data = _stream(objects.get(int(to_unicode.group(1)), b"")) if to_unicode else None
        fonts[name.group(1)] = _cmap(data) if data else None
    lines: list[str] = []
    for contents in re.findall(rb"/Contents (\d+) 0 R", pdf):
        data = _stream(objects.get(int(contents), b""))
        if data is None:
            continue
        cmap: dict[int, str] | None = None
        for token in TOKEN.finditer(data):
            if token.group(1) is not None:
                cmap = fonts.get(token.group(1))
                continue
            raw = _literal(token.group(0))
            lines.append("".join(cmap.get(b, "\ufffd") for b in raw) if cmap else raw.decode("latin-1"))
    return "\n".join(lines)
