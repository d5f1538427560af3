"""Template bombs against the upload page: time, and peak memory of the web process and the check child.

    python bench/template_bombs.py

Each bomb is uploaded through the real upload page (Flask test client, SQLite in a temporary
folder, role sachbearbeitung) and must come back as a German error. Printed per bomb: seconds for
the whole request, how much the web process's peak memory (VmHWM) grew, and the peak memory of the
child process that checked it (measured by the child itself). Baseline: the figures of the
adversarial test before the bounds (issue 16) — 3 GB and 19 s, ~20 min, never ends, 42 s and 1.4 GB.
"""
from __future__ import annotations

import io
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from docx import Document  # noqa: E402

BASELINE = {
    "'x' * 10**9": "3 GB, 500 nach 19 s",
    "2 × range(100000)": "Thread ~20 min belegt",
    "(9**(9**9)) % 10": "endet nicht",
    "590 KB → 157 MB DOCX": "42 s, 1,4 GB",
}


def docx(text: str) -> bytes:
    document = Document()
    document.add_paragraph("Sehr geehrte Damen und Herren,")
    document.add_paragraph(text)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def zip_bomb(size: int = 157 * 1000 * 1000) -> bytes:
    template = zipfile.ZipFile(io.BytesIO(docx("x")))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for info in template.infolist():
            if info.filename != "word/document.xml":
                archive.writestr(info.filename, template.read(info.filename))
        with archive.open("word/document.xml", "w") as member:
            member.write(b'<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body><w:p><w:r><w:t>{{ x }}')
            for _ in range(size // 1_000_000):
                member.write(b"{{ x }}" * 142_857)
            member.write(b"</w:t></w:r></w:p></w:body></w:document>")
    return buffer.getvalue()


def vm_hwm_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    from ki_post import create_app
    from ki_post.auth.services import create_user
    from ki_post.extensions import db
    from ki_post.errors import ValidationError
    from ki_post.letters import engine, isolation
    from ki_post.models import metadata
    from tests.helpers import Client

    bombs = {
        "'x' * 10**9": docx("{{ 'x' * 10**9 }}"),
        "2 × range(100000)": docx("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"),
        "(9**(9**9)) % 10": docx("{{ (9**(9**9)) % 10 }}"),
        "590 KB → 157 MB DOCX": zip_bomb(),
    }
    with tempfile.TemporaryDirectory(prefix="kipost-bombs-") as tmp:
        app = create_app({"DATABASE_URL": f"sqlite:///{tmp}/b.sqlite3", "AUTO_MIGRATE": False, "SECRET_KEY": "bench",
                          "RATELIMIT_ENABLED": False, "EMBEDDED_WORKER": False, "TESTING": True}, instance_path=f"{tmp}/instance")
        app.test_client_class = Client
        with app.app_context():
            metadata.create_all(db.engine)
            create_user("admin@bench.example", "Admin", "admin", "geheim-geheim-123")
            create_user("sb@bench.example", "SB", "sachbearbeitung", "geheim-geheim-123")
            db.session.commit()
            client = app.test_client()
            client.login("sb@bench.example", "geheim-geheim-123")
            # Start the check children's forkserver once, as a running web process has it already.
            isolation.check_template(docx("{{ anrede }}"))
            print(f"{'bomb':24}{'size':>9}{'seconds':>9}{'web +MB':>9}{'child MB':>10}  before (issue 16)")
            for name, data in bombs.items():
                before = vm_hwm_mb()
                start = time.perf_counter()
                page = client.submit("/rundschreiben/vorlagen/neu", {"name": "Bombe", "description": "",
                                                                     "file": (io.BytesIO(data), "bombe.docx")},
                                     content_type="multipart/form-data").get_data(as_text=True)
                seconds = time.perf_counter() - start
                grown = vm_hwm_mb() - before
                assert 'class="error-summary"' in page, name
                try:
                    engine.check_directory(data)
                except ValidationError:
                    child = "–"  # refused by its ZIP directory: no child was needed
                else:
                    try:
                        isolation.check_template(data)
                        child = "?"
                    except isolation.CheckFailed as error:
                        child = f"{error.child_peak_bytes / 1024 / 1024:.0f}"
                print(f"{name:24}{len(data) / 1024:8.0f}K{seconds:9.2f}{grown:9.1f}{child:>10}  {BASELINE[name]}")
            print(f"web process peak memory (VmHWM) at the end: {vm_hwm_mb():.0f} MB; "
                  "child MB: the check child's own peak (VmHWM, incl. the engine it starts with); –: refused by the ZIP directory")


if __name__ == "__main__":
    main()
