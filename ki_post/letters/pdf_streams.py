"""Streams whose compressed data ends in a carriage return, stored uncompressed so that PDF/A validators read them right.

LibreOffice writes every stream as ``stream\\n`` + data + ``\\nendstream`` with /Length = the data.
When the Flate data happens to end in the byte 0x0D (about one stream in 256: its last byte is a
checksum byte), the file reads ``…\\r\\nendstream``: validators take ``\\r\\n`` for the end-of-line
marker, count one byte less than /Length and reject the PDF/A (rule: a stream's /Length matches its
raw content). Compressing again does not help (zlib ends with the Adler-32 of the content, whatever
the level), so such a stream is stored uncompressed; the content stays the same byte for byte.
"""
from __future__ import annotations

import io

import pikepdf


def _needs_fix(stream: pikepdf.Stream) -> bool:
    return stream.get("/Filter") == pikepdf.Name.FlateDecode and "/DecodeParms" not in stream \
        and stream.read_raw_bytes().endswith(b"\r")


def fix_stream_ends(data: bytes) -> bytes:
    """The PDF unchanged, or (when a Flate stream's data ends in 0x0D) saved again with those streams uncompressed."""
    if b"\r\nendstream" not in data:
        return data
    with pikepdf.open(io.BytesIO(data)) as document:
        broken = [item for item in document.objects if isinstance(item, pikepdf.Stream) and _needs_fix(item)]
        if not broken:
            return data
        for stream in broken:
            decoded = stream.read_bytes()
            if not decoded.endswith(b"\r"):  # else (one in 65,536) leave it: nothing better to do
                stream.write(decoded)
        out = io.BytesIO()
        document.save(out, compress_streams=False)  # keep them so; every other stream as it was
        return out.getvalue()
