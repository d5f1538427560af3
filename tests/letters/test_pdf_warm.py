"""PDF from LibreOffice processes kept running between jobs: letters come back in order, each from
its own DOCX, the processes stay up for the next job, and one that died is replaced."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess

import pytest

from ki_post.letters import engine, pdf
from ki_post.letters.services import SHIPPED_DIR, sample_context

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not pdf.pdf_available() or not shutil.which("pdftotext"),
                       reason="LibreOffice (soffice) oder pdftotext fehlt: apt-get install libreoffice-writer-nogui poppler-utils"),
]


@pytest.fixture
def fresh_pool():
    """No processes from other tests; none left behind."""
    pdf.stop_warm_processes()
    yield
    pdf.stop_warm_processes()


def letters(count: int) -> list[bytes]:
    compiled = engine.compile_template((SHIPPED_DIR / "rundschreiben.docx").read_bytes())
    result = []
    for number in range(count):
        context = sample_context()
        context["anrede"] = f"Sehr geehrte Frau Brief{number:03d},"
        result.append(compiled.render(context))
    return result


def text_of(document: bytes, tmp_path) -> str:
    path = tmp_path / "brief.pdf"
    path.write_bytes(document)
    return subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True, check=True).stdout


def warm_pids() -> list[int]:
    pool = pdf._POOLS[pdf.find_soffice()]
    return sorted(office.process.pid for office in pool.idle)


def test_letters_split_among_warm_processes_come_back_in_order(fresh_pool, tmp_path):
    documents = letters(9)
    converted = pdf.convert_to_pdf(documents, processes=2)
    assert len(converted) == 9
    for number, document in enumerate(converted):
        assert f"Brief{number:03d}," in text_of(document, tmp_path), number
    first = warm_pids()
    assert len(first) == 2 and all(os.getpgid(pid) == pid for pid in first)

    # The next job is handed to the same two processes.
    again = pdf.convert_to_pdf(documents[:8], processes=2)
    assert [f"Brief{n:03d}," in text_of(d, tmp_path) for n, d in enumerate(again)] == [True] * 8
    assert warm_pids() == first


def test_a_process_that_died_is_replaced_and_the_job_still_converts(fresh_pool, tmp_path):
    pdf.convert_to_pdf(letters(1), processes=1)
    [dead] = warm_pids()
    os.killpg(dead, signal.SIGKILL)  # our own child's process group
    converted = pdf.convert_to_pdf(letters(2), processes=1)
    assert "Brief001," in text_of(converted[1], tmp_path)
    assert warm_pids() != [dead]


def test_a_letter_libreoffice_cannot_read_is_none_and_the_others_convert(fresh_pool, tmp_path):
    documents = letters(8)
    documents[5] = b"PK\x03\x04 kein ZIP"  # LibreOffice cannot load it
    converted = pdf.convert_to_pdf(documents, processes=2, missing_ok=True)
    assert converted[5] is None
    assert all(converted[n] is not None and f"Brief{n:03d}," in text_of(converted[n], tmp_path) for n in range(8) if n != 5)


def test_stopping_ends_every_kept_process(fresh_pool):
    pdf.convert_to_pdf(letters(4), processes=2)
    groups = warm_pids()
    assert groups and running_in(groups)
    pdf.stop_warm_processes()
    assert not running_in(groups)


def running_in(groups: list[int]) -> list[str]:
    """Processes of these process groups that still run (zombies waiting for init do not count)."""
    listing = subprocess.run(["ps", "-eo", "pgid=,stat=,comm="], capture_output=True, text=True, check=True).stdout
    return [line for line in listing.splitlines() if int(line.split()[0]) in groups and not line.split()[1].startswith("Z")]


def tiny_docx(text: str) -> bytes:
    """The smallest Word document LibreOffice reads (converts in a few milliseconds)."""
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as package:
        package.writestr("[Content_Types].xml", '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
                         '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
                         '<Default Extension="xml" ContentType="application/xml"/><Override PartName="/word/document.xml" '
                         'ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>')
        package.writestr("_rels/.rels", '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
                         '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" '
                         'Target="word/document.xml"/></Relationships>')
        package.writestr("word/document.xml", '<?xml version="1.0" encoding="UTF-8"?><w:document xmlns:w="http://schemas.openxmlformats.org/'
                         f'wordprocessingml/2006/main"><w:body><w:p><w:r><w:t>{text}</w:t></w:r></w:p></w:body></w:document>')
    return buffer.getvalue()


@pytest.mark.parametrize("processes", [0, 1])
def test_more_letters_than_libreoffice_reads_from_one_command_line(fresh_pool, tmp_path, processes):
    """LibreOffice ignores what follows the 256th word of its command line: 260 letters all come back."""
    documents = [tiny_docx(f"Brief Nummer {number:04d}") for number in range(260)]
    converted = pdf.convert_to_pdf(documents, processes=processes, missing_ok=True)
    assert [number for number, document in enumerate(converted) if document is None] == []
    for number in (*range(0, 260, 13), 259):
        assert f"Brief Nummer {number:04d}" in text_of(converted[number], tmp_path)
