"""Build the corpus of real-world letter templates in this folder (all written for KI-Post's tests).

    python tests/letters/corpus/build_corpus.py      # needs LibreOffice (soffice) for two of them

The DOCX files are committed, so the tests need neither this script nor LibreOffice. Each one is a
template as a secretariat would really hand it in:

- libreoffice_einladung.docx — written in LibreOffice Writer (``libreoffice_einladung.fodt``, its
  flat-XML source) and saved as DOCX by LibreOffice itself: quotes and ``&`` inside tags become
  ``&quot;``/``&apos;``/``&amp;``, ``<`` becomes ``&lt;``, a bold word splits a tag into runs, the
  address sits in a text frame (``mc:AlternateContent`` with a VML fallback), fields in header,
  footer and a table with a row loop.
- libreoffice_resave.docx — a Word document opened and saved again by LibreOffice (the usual
  "Speichern unter … Word" in an office without Word).
- word_autocorrect.docx — WordprocessingML as Word writes it (rsids, ``w:proofErr``, runs split
  inside tags, ``w:lastRenderedPageBreak``, a text box, ``w14:paraId``) with what Word's German
  AutoCorrect does while typing: „Kreis“, ‚…‘, and also “…” (English) and «…».
- split_runs.docx — tags torn apart every way Word does it: single braces in their own run,
  formatting changes mid-name, spell-check marks, bookmarks, tracked insertions and deletions,
  soft hyphen, no-break space and zero-width space inside a tag.
- fields_everywhere.docx — placeholders in every part that is filled in: first-page, default and
  even-page headers and footers, a text box in the header, a nested table, a footnote, and the
  document properties (title, subject).
"""
from __future__ import annotations

import io
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from docx import Document
from docx.shared import Pt

HERE = Path(__file__).resolve().parent
NS = ('xmlns:wpc="http://schemas.microsoft.com/office/word/2010/wordprocessingCanvas" '
      'xmlns:mc="http://schemas.openxmlformats.org/markup-compatibility/2006" '
      'xmlns:o="urn:schemas-microsoft-com:office:office" '
      'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships" '
      'xmlns:v="urn:schemas-microsoft-com:vml" '
      'xmlns:w10="urn:schemas-microsoft-com:office:word" '
      'xmlns:wp14="http://schemas.microsoft.com/office/word/2010/wordprocessingDrawing" '
      'xmlns:wp="http://schemas.openxmlformats.org/drawingml/2006/wordprocessingDrawing" '
      'xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main" '
      'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main" '
      'xmlns:w14="http://schemas.microsoft.com/office/word/2010/wordml" '
      'xmlns:w15="http://schemas.microsoft.com/office/word/2012/wordml" '
      'xmlns:wps="http://schemas.microsoft.com/office/word/2010/wordprocessingShape" '
      'mc:Ignorable="w14 w15 wp14"')


# -- helpers for WordprocessingML as Word writes it ---------------------------------------------------
_para_ids = iter(range(0x10A0_0000, 0x7FFF_FFFF, 0x0101_0101))


def run(text: str, rsid: str = "00A1B2C3", *, bold: bool = False, italic: bool = False) -> str:
    props = "".join(("<w:b/><w:bCs/>" if bold else "", "<w:i/><w:iCs/>" if italic else "", '<w:lang w:val="de-DE"/>'))
    space = ' xml:space="preserve"' if text != text.strip() else ""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return f'<w:r w:rsidR="{rsid}"><w:rPr>{props}</w:rPr><w:t{space}>{text}</w:t></w:r>'


def para(*content: str, rsid: str = "00A1B2C3", style: str = "") -> str:
    pid = f"{next(_para_ids):08X}"
    style_xml = f'<w:pStyle w:val="{style}"/>' if style else ""
    ppr = f'<w:pPr>{style_xml}<w:rPr><w:lang w:val="de-DE"/></w:rPr></w:pPr>'
    return f'<w:p w14:paraId="{pid}" w14:textId="77777777" w:rsidR="{rsid}" w:rsidRDefault="{rsid}" w:rsidP="00D4E5F6">{ppr}{"".join(content)}</w:p>'


SPELL_START = '<w:proofErr w:type="spellStart"/>'
SPELL_END = '<w:proofErr w:type="spellEnd"/>'


def textbox(name: str, paragraphs: list[str], box_id: int) -> str:
    """A Word 2010+ text box: the DrawingML shape, and the VML copy older readers use."""
    inner = "".join(paragraphs)
    return (
        f'<w:r><mc:AlternateContent><mc:Choice Requires="wps"><w:drawing>'
        f'<wp:anchor distT="0" distB="0" distL="114300" distR="114300" simplePos="0" relativeHeight="251659264" behindDoc="0" '
        f'locked="0" layoutInCell="1" allowOverlap="1"><wp:simplePos x="0" y="0"/>'
        f'<wp:positionH relativeFrom="page"><wp:posOffset>720090</wp:posOffset></wp:positionH>'
        f'<wp:positionV relativeFrom="page"><wp:posOffset>1620000</wp:posOffset></wp:positionV>'
        f'<wp:extent cx="3060000" cy="1620000"/><wp:effectExtent l="0" t="0" r="0" b="0"/><wp:wrapNone/>'
        f'<wp:docPr id="{box_id}" name="{name}"/><wp:cNvGraphicFramePr/>'
        f'<a:graphic><a:graphicData uri="http://schemas.microsoft.com/office/word/2010/wordprocessingShape">'
        f'<wps:wsp><wps:cNvSpPr txBox="1"/><wps:spPr><a:xfrm><a:off x="0" y="0"/><a:ext cx="3060000" cy="1620000"/></a:xfrm>'
        f'<a:prstGeom prst="rect"><a:avLst/></a:prstGeom><a:noFill/><a:ln><a:noFill/></a:ln></wps:spPr>'
        f'<wps:txbx><w:txbxContent>{inner}</w:txbxContent></wps:txbx>'
        f'<wps:bodyPr rot="0" vert="horz" wrap="square" lIns="0" tIns="0" rIns="0" bIns="0" anchor="t"><a:noAutofit/></wps:bodyPr>'
        f'</wps:wsp></a:graphicData></a:graphic></wp:anchor></w:drawing></mc:Choice>'
        f'<mc:Fallback><w:pict><v:shapetype id="_x0000_t202" coordsize="21600,21600" o:spt="202" path="m,l,21600r21600,l21600,xe">'
        f'<v:stroke joinstyle="miter"/><v:path gradientshapeok="t" o:connecttype="rect"/></v:shapetype>'
        f'<v:shape id="{name}" o:spid="_x0000_s{1025 + box_id}" type="#_x0000_t202" style="position:absolute;margin-left:56.7pt;'
        f'margin-top:127.55pt;width:240.95pt;height:127.55pt;z-index:251659264;mso-position-horizontal-relative:page;'
        f'mso-position-vertical-relative:page" filled="f" stroked="f"><v:textbox inset="0,0,0,0"><w:txbxContent>{inner}'
        f'</w:txbxContent></v:textbox></v:shape></w:pict></mc:Fallback></mc:AlternateContent></w:r>'
    )


def cell(*paragraphs: str, width: int = 4500) -> str:
    return f'<w:tc><w:tcPr><w:tcW w:w="{width}" w:type="dxa"/></w:tcPr>{"".join(paragraphs)}</w:tc>'


def table(*rows: list[str]) -> str:
    grid = "".join('<w:gridCol w:w="4500"/>' for _ in rows[0])
    body = "".join(f'<w:tr w:rsidR="00A1B2C3">{"".join(row)}</w:tr>' for row in rows)
    return (f'<w:tbl><w:tblPr><w:tblStyle w:val="TableGrid"/><w:tblW w:w="0" w:type="auto"/>'
            f'<w:tblLook w:val="04A0" w:firstRow="1" w:lastRow="0" w:firstColumn="1" w:lastColumn="0" w:noHBand="0" w:noVBand="1"/>'
            f'</w:tblPr><w:tblGrid>{grid}</w:tblGrid>{body}</w:tbl>')


def replace_parts(docx: bytes, parts: dict[str, str | bytes], extra_rels: str = "", extra_types: str = "") -> bytes:
    """Rewrite a DOCX with some parts replaced or added (relationships and content types extended)."""
    source = zipfile.ZipFile(io.BytesIO(docx))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            data = source.read(info.filename)
            if info.filename in parts:
                data = parts.pop(info.filename)
            if info.filename == "word/_rels/document.xml.rels" and extra_rels:
                data = data.replace(b"</Relationships>", extra_rels.encode() + b"</Relationships>")
            if info.filename == "[Content_Types].xml" and extra_types:
                data = data.replace(b"</Types>", extra_types.encode() + b"</Types>")
            target.writestr(info.filename, data.encode("utf-8") if isinstance(data, str) else data)
        for name, data in parts.items():
            target.writestr(name, data.encode("utf-8") if isinstance(data, str) else data)
    return buffer.getvalue()


def document_xml(body: str, sect: str) -> str:
    return f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\r\n<w:document {NS}><w:body>{body}{sect}</w:body></w:document>'


def header_xml(kind: str, *paragraphs: str) -> str:
    return f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\r\n<w:{kind} {NS}>{"".join(paragraphs)}</w:{kind}>'


def page_field(rsid: str = "00A1B2C3") -> str:
    return (f'<w:r w:rsidR="{rsid}"><w:fldChar w:fldCharType="begin"/></w:r><w:r w:rsidR="{rsid}"><w:instrText xml:space="preserve"> PAGE </w:instrText></w:r>'
            f'<w:r w:rsidR="{rsid}"><w:fldChar w:fldCharType="separate"/></w:r><w:r w:rsidR="{rsid}"><w:t>1</w:t></w:r>'
            f'<w:r w:rsidR="{rsid}"><w:fldChar w:fldCharType="end"/></w:r>')


def base_with_header_footer() -> tuple[bytes, str]:
    """python-docx's default package (a Word template) with a default header and footer part."""
    document = Document()
    document.sections[0].header.paragraphs[0].text = "x"
    document.sections[0].footer.paragraphs[0].text = "x"
    buffer = io.BytesIO()
    document.save(buffer)
    data = buffer.getvalue()
    archive = zipfile.ZipFile(io.BytesIO(data))
    xml = archive.read("word/document.xml").decode("utf-8")
    sect = re.search(r"<w:sectPr\b.*</w:sectPr>", xml, re.DOTALL).group(0)
    return data, sect


# -- the corpus ---------------------------------------------------------------------------------------
def word_autocorrect() -> bytes:
    data, sect = base_with_header_footer()
    address = [
        para(run("{%p for "), SPELL_START, run("zeile", "00C3D4E5"), SPELL_END, run(" in anschrift %}")),
        para(run("{{", "00C3D4E5"), run(" zeile }}")),
        para(run("{%p endfor %}")),
    ]
    body = "".join([
        para(textbox("Anschriftfeld", address, 1), run("Düsseldorf, {"), run("{ datum }}", "00E5F6A7")),
        para(run("{{ betreff }}", bold=True)),
        para(run("{{ "), SPELL_START, run("anrede", "00C3D4E5"), SPELL_END, run(" }}")),
        # AutoCorrect (German): "Kreis" typed, „Kreis“ stored.
        para(run("{%p if organisation.art == „Kreis“ %}")),
        para(run("{{ organisation.name }} erhält als Kreis ab 2017 drei weitere Personalstellen.")),
        para(run("{%p elif organisation.art == „kreisfreie "), run("Stadt“ %}", "00F6A7B8")),
        para(run("{{ organisation.name }} erhält als kreisfreie Stadt ab 2017 zwei weitere Personalstellen.")),
        para(run("{%p endif %}")),
        para(run("Bitte antworten Sie bis {{ felder.frist|default(‚in vier Wochen‘) }}.")),
        # AutoCorrect (English), as on a machine set up in English.
        para(run("Ihre Ansprechperson: {{ ansprechperson|default(“das Sekretariat”) }}, Telefon {{ telefon }}.")),
        # Guillemets, as a Swiss or typographically keen author types them.
        para(run("Vorgang: {{ «Rundschreiben » ~ aktenzeichen }}")),
        para('<w:r><w:rPr><w:lang w:val="de-DE"/></w:rPr><w:lastRenderedPageBreak/><w:t xml:space="preserve">Auf Seite zwei: </w:t></w:r>',
             run("{{ organisation.ort }}")),
        table(
            [cell(para(run("Name", bold=True))), cell(para(run("Funktion", bold=True)))],
            [cell(para(run("{%tr for person in unterzeichnende %}"))), cell(para())],
            [cell(para(run("{{ person.name }}"))), cell(para(run("{{ person.funktion|default(„–“) }}")))],
            [cell(para(run("{%tr endfor %}"))), cell(para())],
        ),
        para(run("Mit freundlichen Grüßen")),
        para('<w:r><w:br w:type="page"/></w:r>'),
        para(run("Anlage: {{ felder.anlage|default(„keine“) }}")),
    ])
    header = header_xml("hdr", para(run("{{ absender."), SPELL_START, run("ministerium", "00C3D4E5"), run("_zeile1", "00E5F6A7"),
                                    SPELL_END, run(" }}")))
    footer = header_xml("ftr", para(run("Seite "), page_field(), run(" – {{ organisation.name }}")))
    return replace_parts(data, {"word/document.xml": document_xml(body, sect), "word/header1.xml": header,
                                "word/footer1.xml": footer})


def split_runs() -> bytes:
    data, sect = base_with_header_footer()
    body = "".join([
        para(run("Sehr geehrte Damen und Herren,")),
        # Each brace in its own run.
        para(run("An: "), run("{"), run("{"), run(" kontakt.name "), run("}"), run("}")),
        # Formatting changes in the middle of a name.
        para(run("Nachname: {{ kon"), run("takt.nach", bold=True), run("name }}", italic=True)),
        # Spell-check marks and a bookmark inside a tag.
        para(run("Kommune: {{ "), SPELL_START, run("organisation"), '<w:bookmarkStart w:id="0" w:name="_GoBack"/>',
             run(".name"), '<w:bookmarkEnd w:id="0"/>', SPELL_END, run(" }}")),
        # Tracked changes: an insertion and a deletion inside the tag (the deleted word must not count).
        para(run("Ort: {{ organisation."),
             '<w:del w:id="1" w:author="Sekretariat" w:date="2016-12-20T10:00:00Z"><w:r><w:delText>stadt</w:delText></w:r></w:del>',
             '<w:ins w:id="2" w:author="Sekretariat" w:date="2016-12-20T10:00:00Z">', run("ort"), "</w:ins>", run(" }}")),
        # A paragraph condition torn after "{%".
        para(run("{%"), run("p if ist_kreis %}", "00B1C2D3")),
        para(run("Nur für Kreise.")),
        para(run("{%p endif"), run(" %}", "00B1C2D3")),
        # Invisible and special characters typed into a tag.
        para(run("Anrede: {{\u00a0anrede\u00a0}} / {{ kon\u00adtakt.vorname }} / {{ organisation.\u200bplz }}")),
        # A soft hyphen and a tab element between runs inside a tag.
        para(run("Betreff: {{ be"), '<w:r><w:softHyphen/></w:r>', run("treff }}")),
        para(run("Aktenzeichen: {% if aktenzeichen %}{{ aktenzeichen }}{% else %}ohne{% endif %}.")),
    ])
    header = header_xml("hdr", para(run("{"), run("{ absender.ministerium "), run("}}")))
    footer = header_xml("ftr", para(run("{{ organisation."), run("ki_name", bold=True), run(" }}")))
    return replace_parts(data, {"word/document.xml": document_xml(body, sect), "word/header1.xml": header,
                                "word/footer1.xml": footer})


FOOTNOTES = header_xml(
    "footnotes",
    '<w:footnote w:type="separator" w:id="-1"><w:p><w:r><w:separator/></w:r></w:p></w:footnote>',
    '<w:footnote w:type="continuationSeparator" w:id="0"><w:p><w:r><w:continuationSeparator/></w:r></w:p></w:footnote>',
    '<w:footnote w:id="1"><w:p><w:pPr><w:pStyle w:val="FootnoteText"/></w:pPr><w:r><w:rPr><w:vertAlign w:val="superscript"/></w:rPr>'
    '<w:footnoteRef/></w:r>' + run(" Quelle: {{ felder.quelle|default(\"Rundschreiben vom 28. Dezember 2016\") }}") + "</w:p></w:footnote>",
)


def fields_everywhere() -> bytes:
    document = Document()
    section = document.sections[0]
    section.different_first_page_header_footer = True
    document.settings.odd_and_even_pages_header_footer = True
    section.first_page_header.paragraphs[0].text = "Erste Seite: {{ absender.ministerium }}"
    section.header.paragraphs[0].text = "Folgeseiten: {{ betreff }}"
    section.even_page_header.paragraphs[0].text = "Gerade Seite: {{ kontakt.nachname }}"
    section.first_page_footer.paragraphs[0].text = "{{ absender.dienstgebaeude }}"
    section.footer.paragraphs[0].text = "Fußzeile: {{ organisation.name }}"
    section.even_page_footer.paragraphs[0].text = "Gerade Fußzeile: {{ organisation.regierungsbezirk }}"
    document.add_paragraph("{{ anrede }}")
    outer = document.add_table(rows=2, cols=2)
    outer.cell(0, 0).text = "Kommune"
    outer.cell(0, 1).text = "{{ organisation.name }}"
    outer.cell(1, 0).text = "Anschrift"
    inner = outer.cell(1, 1).add_table(rows=1, cols=2)
    inner.cell(0, 0).text = "{{ organisation.plz }}"
    inner.cell(0, 1).text = "{{ organisation.ort }}"
    marker = document.add_paragraph("Siehe Fußnote.")
    marker.runs[0].font.size = Pt(11)
    document.add_paragraph("{{ felder.frist }}")
    document.core_properties.title = "{{ betreff }}"
    document.core_properties.subject = "{{ absender.ministerium }}"
    buffer = io.BytesIO()
    document.save(buffer)
    data = buffer.getvalue()
    archive = zipfile.ZipFile(io.BytesIO(data))
    xml = archive.read("word/document.xml").decode("utf-8")
    xml = xml.replace("<w:t>Siehe Fußnote.</w:t></w:r>",
                      '<w:t>Siehe Fußnote.</w:t></w:r><w:r><w:rPr><w:vertAlign w:val="superscript"/></w:rPr>'
                      '<w:footnoteReference w:id="1"/></w:r>')
    names = [n for n in archive.namelist() if n.startswith("word/header")]
    first_header = next(n for n in names if "Erste Seite" in archive.read(n).decode("utf-8"))
    box = textbox("KI", [para(run("{{ organisation.ki_name }}"))], 7)
    header = archive.read(first_header).decode("utf-8")
    if 'xmlns:a="' not in header:  # python-docx's header declares every namespace of a text box but DrawingML's
        header = header.replace("<w:hdr ", '<w:hdr xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main" ', 1)
    header = header.replace("</w:hdr>", f"<w:p>{box}</w:p></w:hdr>")
    return replace_parts(
        data, {"word/document.xml": xml, first_header: header, "word/footnotes.xml": FOOTNOTES},
        extra_rels='<Relationship Id="rIdFn1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/footnotes" Target="footnotes.xml"/>',
        extra_types='<Override PartName="/word/footnotes.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.footnotes+xml"/>',
    )


def word_for_resave() -> bytes:
    """A plain Word document (ASCII quotes, < and & in tags) for LibreOffice to save again."""
    document = Document()
    document.sections[0].header.paragraphs[0].text = "{{ absender.ministerium_zeile1 }} – {{ absender.ministerium_zeile2 }}"
    document.sections[0].footer.paragraphs[0].text = "{{ absender.ruecksendeangabe }}"
    document.add_paragraph("{{ anrede }}")
    document.add_paragraph('Frist: {{ felder.frist|default("vier Wochen") }}, Betreff: {{ betreff|default(\'ohne\') }}.')
    document.add_paragraph("{% if unterzeichnende|length < 3 and ist_kreis %}Kleiner Kreis{% else %}Sonst{% endif %} & mehr")
    document.add_paragraph('{{ organisation.name ~ " & " ~ organisation.regierungsbezirk }}')
    grid = document.add_table(rows=3, cols=2)
    grid.cell(0, 0).text = "{%tr for person in unterzeichnende %}"
    grid.cell(1, 0).text = "{{ person.name }}"
    grid.cell(1, 1).text = "{{ person.funktion }}"
    grid.cell(2, 0).text = "{%tr endfor %}"
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def soffice_to_docx(source: Path, target: Path) -> None:
    binary = shutil.which("soffice") or shutil.which("libreoffice")
    if binary is None:
        sys.exit("LibreOffice (soffice) fehlt: apt-get install libreoffice-writer-nogui")
    with tempfile.TemporaryDirectory() as tmp:
        profile = Path(tmp, "profile").as_uri()
        out = Path(tmp, "out")
        subprocess.run([binary, f"-env:UserInstallation={profile}", "--headless", "--convert-to", 'docx:MS Word 2007 XML',
                        "--outdir", str(out), str(source)], check=True, capture_output=True, timeout=300)
        shutil.copy(out / (source.stem + ".docx"), target)


def main() -> None:
    (HERE / "word_autocorrect.docx").write_bytes(word_autocorrect())
    (HERE / "split_runs.docx").write_bytes(split_runs())
    (HERE / "fields_everywhere.docx").write_bytes(fields_everywhere())
    soffice_to_docx(HERE / "libreoffice_einladung.fodt", HERE / "libreoffice_einladung.docx")
    with tempfile.TemporaryDirectory() as tmp:
        word = Path(tmp, "libreoffice_resave.docx")
        word.write_bytes(word_for_resave())
        soffice_to_docx(word, HERE / "libreoffice_resave.docx")
    print("\n".join(sorted(p.name for p in HERE.glob("*.docx"))))


if __name__ == "__main__":
    main()
