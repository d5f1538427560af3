"""A Flate stream whose data ends in 0x0D reads as "…\\r\\nendstream": validators count one byte less than /Length."""
from __future__ import annotations

import io
import zlib

import pikepdf

from ki_post.letters.pdf_streams import fix_stream_ends


def _pdf_with_stream_ending_in_cr() -> tuple[bytes, bytes]:
    contents = (b"BT ET % " + b"y" * length + b"\n" for length in range(1000))
    content = next(text for text in contents if zlib.compress(text).endswith(b"\r"))
    document = pikepdf.new()
    document.add_blank_page()
    document.pages[0].Contents = document.make_stream(zlib.compress(content), Filter=pikepdf.Name.FlateDecode)
    out = io.BytesIO()
    document.save(out, compress_streams=False)
    return out.getvalue(), content


def test_a_stream_ending_in_carriage_return_is_stored_uncompressed():
    data, content = _pdf_with_stream_ending_in_cr()
    assert b"\r\nendstream" in data  # what LibreOffice wrote now and then (page 2 of a table card sheet)
    fixed = fix_stream_ends(data)
    assert b"\r\nendstream" not in fixed
    with pikepdf.open(io.BytesIO(fixed)) as document:
        stream = document.pages[0].Contents
        assert stream.read_bytes() == content and "/Filter" not in stream  # the same content, now stored plain


def test_other_pdfs_are_left_alone():
    document = pikepdf.new()
    document.add_blank_page()
    document.pages[0].Contents = document.make_stream(zlib.compress(b"BT ET\n"), Filter=pikepdf.Name.FlateDecode)
    out = io.BytesIO()
    document.save(out)
    assert fix_stream_ends(out.getvalue()) is not None and fix_stream_ends(out.getvalue()) == out.getvalue()
