"""Letters per second: KI-Post engine vs plain docxtpl, and peak memory for 10,000 letters.

    python bench/letters.py [--letters 1000] [--big 10000]

Same shipped template (templates/letters/rundschreiben.docx), same personalised data, one run.
docxtpl is the baseline: load, render (sandboxed, autoescaped), save — per letter. KI-Post:
compile once, render the tagged parts, copy the rest, stream into a ZIP on disk. The memory test
runs in a child process so its peak (VmHWM) is that of the 10,000-letter run alone.
"""
from __future__ import annotations

import argparse
import csv
import io
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
            "unterzeichnende": [{"name": "Anton Rütten", "funktion": "Leiter der Abteilung IV, MAIS"}],
        }


def run_kipost(n: int, target: Path) -> float:
    start = time.perf_counter()
    compiled = engine.compile_template(TEMPLATE.read_bytes())
    engine.write_letters_zip(target, ((f"brief-{i:05d}.docx", compiled.render(ctx)) for i, ctx in enumerate(contexts(n))))
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
        big = Path(tmp) / "big.zip"
        out = subprocess.run([sys.executable, __file__, "--memory-child", str(args.big), str(big)], capture_output=True, text=True, check=True)
        seconds, peak, size = out.stdout.split()
        print(f"{args.big} letters into a ZIP on disk: {float(seconds):.1f} s ({args.big / float(seconds):.0f} letters/s), "
              f"peak memory {float(peak):.0f} MB (target < 300 MB), ZIP {int(size) / 1e6:.0f} MB")


if __name__ == "__main__":
    main()
