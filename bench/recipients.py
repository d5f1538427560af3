"""Verteiler at scale: import 10,000 rows (XLSX and CSV) and the contact list page with 10,000 contacts;
then KI-Post's XLSX reader against openpyxl's read-only mode, on the same files and on hostile ones.

    python bench/recipients.py [--rows 10000] [--database postgresql://postgres@127.0.0.1/kipost_bench] [--no-bombs]

Targets (issue 3, this 2-core machine): import < 10 s, list page < 200 ms. The baseline column is
the same measurement on the 53 demo contacts, so the figures show what scale costs.
Each import runs against a fresh database; "re-import" runs the same file again (all unchanged).
XLSX comes in two shapes: as openpyxl writes it (inline strings, also our own export) and as Excel
writes it (every text in the shared string table).

Hostile files (issue 16) each run in a child process with a 3 GB address-space limit; the figures
are wall time and peak memory (RSS) of that process, next to the process's need without any file.
"""
from __future__ import annotations

import argparse
import csv
import io
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from openpyxl import Workbook  # noqa: E402
from sqlalchemy import text  # noqa: E402

from ki_post import create_app  # noqa: E402
from ki_post.extensions import db  # noqa: E402
from ki_post.models import metadata  # noqa: E402
from tests.recipients.files import inline_cell, xlsx_package, xlsx_shared_strings  # noqa: E402

HEADERS = ["Kommune", "Art", "Regierungsbezirk", "Anrede", "Titel", "Vorname", "Nachname", "Funktion",
           "Straße", "PLZ", "Ort", "E-Mail", "Telefon", "Bemerkung intern"]
KOMMUNEN = ROOT / "ki_post" / "demo_data" / "nrw-kommunen.csv"
PASSWORD = "bench-passwort-123"


def rows(n: int) -> list[list[str]]:
    with KOMMUNEN.open(encoding="utf-8") as handle:
        kommunen = list(csv.DictReader(handle, delimiter=";"))
    result = []
    for i in range(n):
        k = kommunen[i % len(kommunen)]
        result.append([
            k["Kommune"], k["Art"], k["Regierungsbezirk"], ("Frau", "Herr", "")[i % 3], ("", "Dr.", "", "Prof. Dr.")[i % 4],
            f"Vorname{i}", f"Nachname{i:05d}", "Dezernat Integration", f"Rathausplatz {i % 53 + 1}",
            f"{40000 + (i % 53) * 397:05d}", k["Kommune"].split()[-1], f"person{i}@kommune{i % 53}.example",
            f"0211 {i:06d}", f"Notiz {i}",
        ])
    return result


def xlsx_bytes(data: list[list[str]]) -> bytes:
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("Verteiler")
    sheet.append(HEADERS)
    for row in data:
        sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def csv_bytes(data: list[list[str]]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=";", lineterminator="\r\n").writerows([HEADERS, *data])
    return buffer.getvalue().encode("cp1252")  # as German Excel writes it


def fresh_app(tmp: Path, database: str):
    url = database or f"sqlite:///{tmp}/bench-{time.monotonic_ns()}.sqlite3"
    app = create_app({"DATABASE_URL": url, "AUTO_MIGRATE": False, "SECRET_KEY": "bench", "TESTING": True,
                      "RATELIMIT_ENABLED": False, "EMBEDDED_WORKER": False, "WTF_CSRF_ENABLED": False},
                     instance_path=str(tmp / "instance"))
    with app.app_context():
        if database:
            with db.engine.begin() as connection:
                connection.execute(text("DROP SCHEMA public CASCADE"))
                connection.execute(text("CREATE SCHEMA public"))
        metadata.create_all(db.engine)
        from ki_post.auth.services import create_user

        create_user("bench@ministerium.example", "Bench", "sachbearbeitung", PASSWORD)
        db.session.commit()
    return app


def timed_read(reader: str, data: bytes, repeat: int = 3) -> float:
    """Median seconds to read all rows of ``data`` with KI-Post's reader or openpyxl's read-only mode."""
    from openpyxl import load_workbook

    from ki_post.recipients.importer import read_table

    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        if reader == "ki-post":
            read_table(data, "x.xlsx")
        else:
            workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
            for _row in workbook.worksheets[0].iter_rows(values_only=True):
                pass
            workbook.close()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


_CHILD = """
import io, json, sys, time

def peak_mb():
    # VmHWM: the high-water mark of this program's memory (ru_maxrss would include the parent's before exec)
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024

sys.path.insert(0, sys.argv[1])
reader, path = sys.argv[2], sys.argv[3]
if reader == "ki-post":
    from ki_post.recipients.importer import ImportFileError, read_table
else:
    from openpyxl import load_workbook
data = open(path, "rb").read() if path != "-" else b""
start = time.perf_counter()
try:
    if path == "-":
        outcome = "ohne Datei"
    elif reader == "ki-post":
        try:
            outcome = "gelesen: %d Zeilen" % len(read_table(data, path).rows)
        except ImportFileError as error:
            outcome = "abgelehnt: " + str(error)
    else:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        outcome = "gelesen: %d Zeilen" % sum(1 for _ in book.worksheets[0].iter_rows(values_only=True))
except MemoryError:
    outcome = "Speichergrenze erreicht"
except Exception as error:
    outcome = "Fehler: " + type(error).__name__
print(json.dumps({"outcome": outcome, "seconds": time.perf_counter() - start,
                  "peak_mb": peak_mb()}))
"""
CHILD_MEMORY = 3 * 1024 ** 3
CHILD_SECONDS = 300


def in_child(reader: str, path: str) -> dict:
    import json
    import resource
    import subprocess

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (CHILD_MEMORY, CHILD_MEMORY))

    try:
        result = subprocess.run([sys.executable, "-c", _CHILD, str(ROOT), reader, path], capture_output=True,
                                text=True, timeout=CHILD_SECONDS, preexec_fn=limit)
    except subprocess.TimeoutExpired:
        return {"outcome": f"nach {CHILD_SECONDS} s abgebrochen", "seconds": CHILD_SECONDS, "peak_mb": float("nan")}
    if result.returncode != 0:
        return {"outcome": "Prozess abgestürzt (" + result.stderr.strip().splitlines()[-1][:60] + ")", "seconds": float("nan"), "peak_mb": float("nan")}
    return json.loads(result.stdout)


def bombs(tmp: Path) -> list[tuple[str, str, bool]]:
    """(description, file, openpyxl can read the kind) for each hostile file, written to ``tmp``."""
    def write(name: str, data: bytes) -> str:
        path = tmp / name
        path.write_bytes(data)
        return str(path)

    header = ['<row r="1">', inline_cell("A1", "E-Mail"), "</row>"]
    three_gb = ("<si><t>" + "A" * 100_000 + "</t></si>" for _ in range(30_000))
    files = [
        ("XLSX mit Zellbezug AAAAAAA2", write("aaaaaaa2.xlsx", xlsx_package([*header, '<row r="2">', inline_cell("AAAAAAA2", "x"), "</row>"]))),
        ("XLSX, 3 GB Texttabelle", write("strings-3gb.xlsx", xlsx_package(['<row r="1"><c r="A1" t="s"><v>0</v></c></row>'], three_gb))),
        ("XLSX, leere Zelle in XFD je Zeile (20.000)", write("xfd.xlsx", xlsx_package(
            [*header, *(f'<row r="{i}">{inline_cell(f"A{i}", f"a{i}@x.example")}<c r="XFD{i}" s="0"/></row>' for i in range(2, 20_000))]))),
        ("XLSX, eine Zeile mit 3 Mio. leeren Zellen", write("row.xlsx", xlsx_package([*header[:2], "<c/>" * 3_000_000, "</row>"]))),
        ("XLSX, 1 Mio. verschiedene Texte", write("million.xlsx", xlsx_package(['<row r="1"><c r="A1" t="s"><v>0</v></c></row>'],
                                                                               (f"<si><t>{i:x}</t></si>" for i in range(1_000_001))))),
        ("XLSX, 2 Mio. leere Zellen in 123 Zeilen", write("empty.xlsx", xlsx_package(
            [*header, *(f'<row r="{i}">' + "<c/>" * 16_384 + "</row>" for i in range(2, 125))]))),
        ("zum Vergleich: größte erlaubte Liste, 50.000 × 17 (Excel)", write("max.xlsx", xlsx_shared_strings(
            [[*HEADERS, "Dezernat", "Zusatz", "Fax"], *([*row, "Integration", f"z{i}", f"0211 {i}"] for i, row in enumerate(rows(50_000)))]))),
        ("CSV mit 400.000 Spalten", write("breit.csv", ("E-Mail;" + ";".join(f"Spalte {i}" for i in range(400_000)) + "\r\na@b.example;x\r\n").encode())),
    ]
    return [(label, path, path.endswith(".xlsx")) for label, path in files]


def preview_page_bytes(app, data: bytes, name: str) -> tuple[int, int]:
    """(status, size in bytes) of the upload answer for ``data`` in the web interface."""
    client = app.test_client()
    client.post("/anmelden", data={"email": "bench@ministerium.example", "password": PASSWORD})
    response = client.post("/verteiler/import", data={"file": (io.BytesIO(data), name)}, content_type="multipart/form-data")
    return response.status_code, len(response.get_data())


def reader_comparison(tmp: Path, big: list[list[str]], with_bombs: bool, app) -> None:
    shapes = {"XLSX wie openpyxl (Inline-Texte)": xlsx_bytes(big), "XLSX wie Excel (Texttabelle)": xlsx_shared_strings([HEADERS, *big])}
    print()
    print(f"{'XLSX lesen, ' + f'{len(big):,}'.replace(',', '.') + ' Zeilen':<44}{'openpyxl':>14}{'KI-Post':>14}{'gespart':>10}")
    for label, data in shapes.items():
        slow, fast = timed_read("openpyxl", data), timed_read("ki-post", data)
        print(f"{label:<44}{slow:>12.2f} s{fast:>12.2f} s{slow - fast:>8.2f} s")
    if not with_bombs:
        return
    print()
    print("Feindliche Dateien (Kindprozess, Grenze 3 GB): Zeit, Spitzen-Speicher, Ergebnis")
    idle = in_child("ki-post", "-"), in_child("openpyxl", "-")
    print(f"{'  Grundbedarf ohne Datei':<46}KI-Post {idle[0]['peak_mb']:.0f} MB, openpyxl {idle[1]['peak_mb']:.0f} MB")
    for label, path, xlsx in bombs(tmp):
        size = Path(path).stat().st_size
        print(f"  {label} ({size / 1024:,.0f} KB)".replace(",", "."))
        for reader in (("openpyxl", "ki-post") if xlsx else ("ki-post",)):
            figures = in_child(reader, path)
            print(f"    {reader:<10}{figures['seconds']:>8.2f} s{figures['peak_mb']:>9.0f} MB   {figures['outcome'][:90]}")
    status, size = preview_page_bytes(app, Path(tmp / "breit.csv").read_bytes(), "breit.csv")
    print(f"  Antwortseite auf den Upload der CSV mit 400.000 Spalten: HTTP {status}, {size / 1024:.1f} KB (vorher 541 MB)")


def timed_import(app, data: bytes, name: str) -> tuple[float, str]:
    from ki_post.recipients.importer import apply_import

    with app.app_context():
        start = time.perf_counter()
        result = apply_import(data, name)
        db.session.commit()
        elapsed = time.perf_counter() - start
        db.session.remove()
    return elapsed, result.summary()


def list_page_ms(app, query: str = "", repeat: int = 15) -> float:
    client = app.test_client()
    response = client.post("/anmelden", data={"email": "bench@ministerium.example", "password": PASSWORD})
    assert response.status_code == 302, response.status_code
    client.get("/verteiler/" + query)  # warm-up: templates compiled, caches filled
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        response = client.get("/verteiler/" + query)
        times.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--database", default="", help="PostgreSQL URL of a throw-away database (its schema is dropped)")
    parser.add_argument("--no-bombs", action="store_true", help="skip the hostile files")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        big, small = rows(args.rows), rows(53)
        files = {"XLSX": (xlsx_bytes(big), xlsx_bytes(small), "x.xlsx"),
                 "XLSX (Excel)": (xlsx_shared_strings([HEADERS, *big]), xlsx_shared_strings([HEADERS, *small]), "x.xlsx"),
                 "CSV": (csv_bytes(big), csv_bytes(small), "x.csv")}
        backend = "PostgreSQL" if args.database else "SQLite"
        print(f"KI-Post Verteiler-Benchmark, {backend}, {args.rows:,} Zeilen (Basis: 53 Zeilen)".replace(",", "."))
        print(f"{'Messung':<44}{'Basis (53)':>14}{'Groß':>14}{'Ziel':>10}")

        queries = [
            ("Listenseite, Seite 1", ""),
            ("Listenseite, Seite 100", "?page=100"),
            ("Listenseite, Suche „nachname0999“", "?q=nachname0999"),
            ("Listenseite, Filter Köln + Kreis", "?regierungsbezirk=K%C3%B6ln&kind=kreis"),
            ("Listenseite, sortiert nach E-Mail absteigend", "?sort=email&dir=desc"),
        ]
        pages: dict[str, list[float]] = {}
        for kind, (big_data, small_data, name) in files.items():
            # Measured right after each import: with PostgreSQL every app shares the one database.
            small_app = fresh_app(tmp, args.database)
            small_time, _ = timed_import(small_app, small_data, name)
            if kind == "CSV":
                pages["base"] = [list_page_ms(small_app, query) for _, query in queries]
            big_app = fresh_app(tmp, args.database)
            big_time, summary = timed_import(big_app, big_data, name)
            again_time, again_summary = timed_import(big_app, big_data, name)
            print(f"{'Import ' + kind + ' (neu)':<44}{small_time:>12.2f} s{big_time:>12.2f} s{'< 10 s':>10}   {summary}")
            print(f"{'Import ' + kind + ' erneut (unverändert)':<44}{'':>14}{again_time:>12.2f} s{'< 10 s':>10}   {again_summary}")
            if kind == "CSV":
                pages["big"] = [list_page_ms(big_app, query) for _, query in queries]
            for app in (small_app, big_app):
                with app.app_context():
                    db.engine.dispose()
        for (label, _), base, scaled in zip(queries, pages["base"], pages["big"]):
            print(f"{label:<44}{base:>11.1f} ms{scaled:>11.1f} ms{'< 200 ms':>10}")
        app = fresh_app(tmp, args.database)
        reader_comparison(tmp, big, not args.no_bombs, app)
        with app.app_context():
            db.engine.dispose()


if __name__ == "__main__":
    main()
