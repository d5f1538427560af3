"""Letters per second: KI-Post engine vs plain docxtpl, the whole `letters render` command, and peak
memory for 10,000 letters.

    python bench/letters.py [--letters 1000] [--big 10000] [--command-letters 2000]
                            [--database postgresql://postgres@127.0.0.1/kipost_bench]

Same shipped template (templates/letters/rundschreiben.docx), same personalised data, one run.
docxtpl is the baseline: load, render (sandboxed, autoescaped), save — per letter. KI-Post:
compile once, render the tagged parts, copy the rest, stream into a ZIP on disk. The memory test
runs in a child process so its peak (VmHWM) is that of the 10,000-letter run alone.

The command line is `flask --app app letters render` run in-process (click's runner) on a fresh
database with that many contacts: template lookup, recipients, rendering, ZIP, archive (bytes once
per sha256 plus one row per letter), commit. Its baseline is the archive path as it was before
batching (a `session.get` with autoflush and an ORM object per letter), run in the same process on
the same data. SQLite always; PostgreSQL with --database (its public schema is dropped!).

PDF: the same letters converted by LibreOffice, today's cold way (one fresh process for the whole
batch, start included) against the processes kept running between jobs (--pdf-processes, one per
core; started before the job is timed, as they are when a job comes). Target >= 15 letters/s for
500 letters on 2 cores.
"""
from __future__ import annotations

import argparse
import csv
import io
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ki_post.letters import engine  # noqa: E402
from ki_post.recipients.addressing import address_lines, salutation  # noqa: E402

TEMPLATE = ROOT / "templates" / "letters" / "rundschreiben.docx"
KOMMUNEN = ROOT / "ki_post" / "demo_data" / "nrw-kommunen.csv"
SENDER = {
    "ministerium": "Ministerium für Arbeit, Integration und Soziales des Landes Nordrhein-Westfalen",
    "ministerium_zeile1": "Ministerium für Arbeit, Integration und Soziales", "ministerium_zeile2": "des Landes Nordrhein-Westfalen",
    "ruecksendeangabe": "MAIS NRW, 40190 Düsseldorf", "dienstgebaeude": "Fürstenwall 25\n40219 Düsseldorf",
    "kommunikation": "Telefon 0211 855-5\nTelefax 0211 855-3683", "verkehr": "Rheinbahn Linie 709, Haltestelle Stadttor",
}


def contexts(n: int):
    with KOMMUNEN.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle, delimiter=";"))
    kind_key = next(k for k in rows[0] if "art" in k.lower() or "kind" in k.lower())
    name_key = next(iter(rows[0]))
    for i in range(n):
        row = rows[i % len(rows)]
        kind = "kreisfreie_stadt" if "Stadt" in row[kind_key] and "Städte" not in row[kind_key] else "kreis"
        org = SimpleNamespace(name=row[name_key], authority=f"{row[name_key]} – Die Verwaltung", street=f"Rathausplatz {i % 90 + 1}",
                              postcode=f"{40000 + i % 9999:05d}", town=row[name_key], kind=kind)
        contact = SimpleNamespace(anrede="frau" if i % 2 else "herr", academic_title="Dr." if i % 5 == 0 else "", office_title="",
                                  first_name=f"Vorname{i}", last_name=f"Nachname & Söhne {i}", organisation=org)
        yield {
            "anrede": salutation(contact), "anschrift": address_lines(contact), "organisation": {"name": org.name},
            "ist_kreis": kind == "kreis", "ist_kreisfreie_stadt": kind == "kreisfreie_stadt",
            "datum": "28. Dezember 2016", "aktenzeichen": f"9506-{i}", "betreff": "Ausbau der Kommunalen Integrationszentren",
            "ansprechperson": "Agnes Heuvelmann", "telefon": "0211 855-3607", "telefax": "0211 855-3683",
            "email": "agnes.heuvelmann@mais.nrw.de", "absender": SENDER,
            "unterzeichnende": [{"name": "Anton Rütten", "funktion": "Leiter der Abteilung IV, MAIS"},
                                {"name": "Dr. Norbert Reichel", "funktion": "Leiter der Gruppe 32, MSW"}],
        }


def properties(ctx: dict) -> engine.DocumentProperties:
    return engine.DocumentProperties(f"Rundschreiben: {ctx['betreff']} – {ctx['organisation']['name']}", SENDER["ministerium"])


def run_kipost(n: int, target: Path) -> float:
    start = time.perf_counter()
    compiled = engine.compile_template(TEMPLATE.read_bytes())
    # As the app renders: each letter's title and author set (its PDF/A names them).
    engine.write_letters_zip(target, ((f"brief-{i:05d}.docx", compiled.render(ctx, properties(ctx)))
                                      for i, ctx in enumerate(contexts(n))))
    return time.perf_counter() - start


def run_docxtpl(n: int, target: Path) -> float:
    import zipfile

    from docxtpl import DocxTemplate
    from jinja2.sandbox import SandboxedEnvironment

    env = SandboxedEnvironment(autoescape=True)
    start = time.perf_counter()
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_STORED) as archive:
        for i, ctx in enumerate(contexts(n)):
            document = DocxTemplate(str(TEMPLATE))
            document.render(ctx, jinja_env=env)
            buffer = io.BytesIO()
            document.save(buffer)
            archive.writestr(f"brief-{i:05d}.docx", buffer.getvalue())
    return time.perf_counter() - start


# -- the whole command -------------------------------------------------------------------------------
def command_app(database: str, tmp: Path, n: int, *, compressed_blobs: bool = False):
    """A fresh database with the 53 demo organisations and ``n`` active contacts."""
    from sqlalchemy import select, text

    from ki_post import create_app
    from ki_post.demo import load_demo_verteiler
    from ki_post.extensions import db
    from ki_post.recipients.models import Contact, Organisation
    from tests.helpers import fresh_schema

    url = database if database != "sqlite" else f"sqlite:///{tmp}/bench.sqlite3"
    app = create_app({"DATABASE_URL": url, "AUTO_MIGRATE": False, "SECRET_KEY": "bench", "TESTING": True,
                      "EMBEDDED_WORKER": False}, instance_path=str(tmp / "instance"))
    fresh_schema(app)
    with app.app_context():
        if compressed_blobs and db.engine.dialect.name == "postgresql":
            with db.engine.begin() as connection:  # as before: TOAST compresses the bytes again
                connection.execute(text("ALTER TABLE blobs ALTER COLUMN data SET STORAGE EXTENDED"))
        load_demo_verteiler()
        organisations = list(db.session.scalars(select(Organisation).order_by(Organisation.id)))
        for i in range(n - 53):
            db.session.add(Contact(anrede=("frau", "herr", "")[i % 3], academic_title=("", "Dr.", "", "Prof. Dr.")[i % 4],
                                   first_name=f"Vorname{i}", last_name=f"Nachname{i:05d}", function="Dezernat Integration",
                                   email=f"person{i}@kommune{i % 53}.example", organisation=organisations[i % 53]))
        db.session.commit()
        db.session.remove()
    return app


def per_letter_archive(batch) -> None:
    """The archive path before batching, for the baseline: a blob lookup per letter (which autoflushes
    the previous letter's row) and an ORM object per letter."""
    from sqlalchemy.dialects.postgresql import insert as postgresql_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    from ki_post.blobs import Blob, sha256_of
    from ki_post.db_types import utcnow
    from ki_post.extensions import db
    from ki_post.letters.models import ArchivedLetter

    for row, document in batch:
        key = sha256_of(document)
        if db.session.get(Blob, key) is None:
            insert = postgresql_insert if db.engine.dialect.name == "postgresql" else sqlite_insert
            db.session.execute(insert(Blob).values(sha256=key, size=len(document), data=document, created_at=utcnow())
                               .on_conflict_do_nothing(index_elements=[Blob.sha256]))
        db.session.add(ArchivedLetter(**row, sha256=key))
    batch.clear()


def run_command(database: str, n: int, tmp: Path, *, baseline: bool) -> float:
    from ki_post.extensions import db
    from ki_post.letters import services

    tmp.mkdir(parents=True, exist_ok=True)
    app = command_app(database, tmp, n, compressed_blobs=baseline)
    saved = services._archive, services.ARCHIVE_BATCH
    if baseline:
        services._archive, services.ARCHIVE_BATCH = per_letter_archive, 1
    services._COMPILED.clear()  # each run compiles the template, as a fresh command does
    try:
        with app.app_context():
            start = time.perf_counter()
            result = app.test_cli_runner().invoke(args=[
                "letters", "render", "--template", "rundschreiben", "--out", str(tmp / "briefe.zip"),
                "--set", "betreff=Ausbau der Kommunalen Integrationszentren", "--set", "datum=2016-12-28"])
            seconds = time.perf_counter() - start
            if result.exit_code != 0 or f"{n} Briefe geschrieben" not in result.output:
                raise SystemExit(f"letters render failed: {result.output} {result.exception!r}")
            db.session.remove()
            db.engine.dispose()
    finally:
        services._archive, services.ARCHIVE_BATCH = saved
    return seconds


def command_figures(n: int, databases: list[str], tmp: Path, repeat: int) -> list[tuple[str, float, float]]:
    """Best of ``repeat`` alternating runs per variant (this machine's cores are shared)."""
    figures = []
    for database in databases:
        label = "SQLite" if database == "sqlite" else "PostgreSQL"
        before, after = [], []
        for attempt in range(repeat):
            before.append(run_command(database, n, tmp / f"{label}-before-{attempt}", baseline=True))
            after.append(run_command(database, n, tmp / f"{label}-after-{attempt}", baseline=False))
        figures.append((label, min(before), min(after)))
    return figures


def pdf_figures(n: int, processes: int) -> tuple[float, float, float, int]:
    """Seconds for ``n`` letters cold and warm, seconds for one letter warm, pages."""
    from ki_post.letters import pdf

    compiled = engine.compile_template(TEMPLATE.read_bytes())
    documents = [compiled.render(ctx, properties(ctx)) for ctx in contexts(n)]
    start = time.perf_counter()
    cold = pdf.convert_to_pdf(documents, processes=0)
    cold_seconds = time.perf_counter() - start
    pdf.convert_to_pdf(documents[:processes * pdf.MIN_LETTERS_PER_PROCESS], processes=processes)  # the running processes
    start = time.perf_counter()
    pdf.convert_to_pdf(documents[:1], processes=processes)
    one = time.perf_counter() - start
    start = time.perf_counter()
    warm = pdf.convert_to_pdf(documents, processes=processes)
    warm_seconds = time.perf_counter() - start
    pdf.stop_warm_processes()
    assert [pdf.page_count(d) for d in warm] == [pdf.page_count(d) for d in cold]
    return cold_seconds, warm_seconds, one, sum(pdf.page_count(d) for d in warm)


def peak_memory_mb() -> float:
    """VmHWM of this process image. ru_maxrss survives exec on Linux (it would report the parent's peak)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def memory_child(n: int, target: str) -> None:
    seconds = run_kipost(n, Path(target))
    peak_mb = peak_memory_mb()
    print(f"{seconds:.3f} {peak_mb:.1f} {Path(target).stat().st_size}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--letters", type=int, default=1000)
    parser.add_argument("--big", type=int, default=10000)
    parser.add_argument("--command-letters", type=int, default=2000, help="letters for the whole command (0: skip)")
    parser.add_argument("--pdf-letters", type=int, default=500, help="letters for the PDF figures (0: skip)")
    parser.add_argument("--pdf-processes", type=int, default=os.cpu_count() or 1, help="LibreOffice processes kept running")
    parser.add_argument("--repeat", type=int, default=3, help="runs per command variant; the best counts")
    parser.add_argument("--database", default="", help="PostgreSQL URL for the command figures too (schema is dropped)")
    parser.add_argument("--memory-child", nargs=2, metavar=("N", "ZIP"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        memory_child(int(args.memory_child[0]), args.memory_child[1])
        return
    with tempfile.TemporaryDirectory(prefix="kipost-bench-") as tmp:
        n = args.letters
        kipost = run_kipost(n, Path(tmp) / "kipost.zip")
        baseline = run_docxtpl(n, Path(tmp) / "docxtpl.zip")
        print(f"{n} personalised letters from {TEMPLATE.relative_to(ROOT)}")
        print(f"{'':24}{'seconds':>10}{'letters/s':>12}")
        print(f"{'docxtpl (baseline)':24}{baseline:10.2f}{n / baseline:12.1f}")
        print(f"{'KI-Post engine':24}{kipost:10.2f}{n / kipost:12.1f}")
        print(f"ratio KI-Post / docxtpl: {baseline / kipost:.1f}x (target >= 20x)")
        if args.command_letters:
            m = args.command_letters
            databases = ["sqlite"] + ([args.database] if args.database else [])
            figures = command_figures(m, databases, Path(tmp), args.repeat)
            print(f"{m} letters, whole `flask --app app letters render` (ZIP + archive), letters/s, best of {args.repeat} "
                  "(target >= 1000):")
            print(f"{'':28}" + "".join(f"{label:>14}" for label, _, _ in figures))
            print(f"{'per-letter archive (before)':28}" + "".join(f"{m / before:14.0f}" for _, before, _ in figures))
            print(f"{'batched archive (now)':28}" + "".join(f"{m / after:14.0f}" for _, _, after in figures))
        if args.pdf_letters:
            from ki_post.letters import pdf

            if not pdf.pdf_available():
                print("PDF: LibreOffice (soffice) fehlt, übersprungen")
            else:
                k = args.pdf_letters
                cold, warm, one, pages = pdf_figures(k, args.pdf_processes)
                print(f"{k} letters to PDF ({pages} pages), LibreOffice, letters/s (target >= 15 on 2 cores):")
                print(f"{'cold, one process':28}{k / cold:14.1f}")
                print(f"{f'kept running, {args.pdf_processes} processes':28}{k / warm:14.1f}   (one letter: {one:.2f} s)")
        big = Path(tmp) / "big.zip"
        out = subprocess.run([sys.executable, __file__, "--memory-child", str(args.big), str(big)], capture_output=True, text=True, check=True)
        seconds, peak, size = out.stdout.split()
        print(f"{args.big} letters into a ZIP on disk: {float(seconds):.1f} s ({args.big / float(seconds):.0f} letters/s), "
              f"peak memory {float(peak):.0f} MB (target < 300 MB), ZIP {int(size) / 1e6:.0f} MB")


if __name__ == "__main__":
    main()
