"""Three independent iCalendar parsers, each asked for the ORGANIZER/ATTENDEE values of a calendar object.

    readers = calendar_readers()            # icalendar, strict `ical`, ical.js (skips the test without node)
    for name, read in readers.items():
        assert read(ics_bytes)["attendee"] == ["mailto:renée.schaefer@kreis.example"]

ical.js (Mozilla, the parser of Thunderbird) comes from npm, pinned in tests/package.json and
package-lock.json; `make test` and `.ci/run` install it with `npm ci --prefix tests`.
"""
from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import icalendar
import pytest
from ical.calendar_stream import IcsCalendarStream

TESTS = Path(__file__).resolve().parent
Reader = Callable[[bytes], dict[str, list[str]]]


def read_icalendar(data: bytes) -> dict[str, list[str]]:
    (event,) = icalendar.Calendar.from_ical(data).walk("VEVENT")

    def values(name: str) -> list[str]:
        found = event.get(name)
        return [] if found is None else [str(v) for v in (found if isinstance(found, list) else [found])]

    return {"organizer": values("ORGANIZER"), "attendee": values("ATTENDEE")}


def read_ical(data: bytes) -> dict[str, list[str]]:
    (event,) = IcsCalendarStream.calendar_from_ics(data.decode("utf-8")).events
    return {"organizer": [str(event.organizer.uri)] if event.organizer else [],
            "attendee": [str(attendee.uri) for attendee in event.attendees]}


def read_ical_js(data: bytes) -> dict[str, list[str]]:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node fehlt: ical.js (Mozilla) kann nicht prüfen (apt-get install nodejs npm)")
    if not (TESTS / "node_modules" / "ical.js").is_dir():
        pytest.skip("ical.js ist nicht installiert: make test oder npm ci --prefix tests")
    done = subprocess.run([node, str(TESTS / "ical_js.mjs")], input=data, capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr.decode("utf-8", "replace")
    (event,) = json.loads(done.stdout)["events"]
    return {name: [entry["value"] for entry in event[name]] for name in ("organizer", "attendee")}


def calendar_readers() -> dict[str, Reader]:
    return {"icalendar": read_icalendar, "ical": read_ical, "ical.js": read_ical_js}
