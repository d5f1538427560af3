"""Participant overview and exports."""
from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select

from ..errors import ValidationError
from ..extensions import db
from .attendance import ATTENDANCE_HEADER, attendance_cells, by_invitation, walk_in_rows
from .delivery import deliveries
from .models import Event, Invitation, InvitationState
from .questions import answer_cells, questions_of


@dataclass
class Overview:
    counts: Counter
    companions: int
    by_organisation: list[tuple[str, Counter]]
    invitations: list[Invitation]
    # Where each person's invitation stands in the outbox ("gesendet", "wartend", "keine Einladung" …).
    delivery: dict[int, str] = field(default_factory=dict)


def overview(event: Event, *, q: str = "", state: str = "") -> Overview:
    invitations = sorted(event.invitations, key=lambda i: (i.organisation_name.lower(), i.name.lower()))
    counts: Counter = Counter(i.state for i in invitations)
    counts["invited"] = len(invitations)
    companions = sum(i.companions for i in invitations if i.state == InvitationState.ZUGESAGT)
    per_org: dict[str, Counter] = defaultdict(Counter)
    for i in invitations:
        per_org[i.organisation_name or "—"][i.state] += 1
    shown = invitations
    if state:
        shown = [i for i in shown if i.state == state]
    if q:
        needle = q.strip().lower()
        shown = [i for i in shown if needle in i.name.lower() or needle in i.email or needle in i.organisation_name.lower()]
    found = deliveries(event)
    labels = {i.id: found[i.id].request_label if i.id in found else "keine Einladung" for i in shown}
    return Overview(counts, companions, sorted(per_org.items()), shown, labels)


def answer_counts(event_ids: list[int]) -> dict[int, Counter]:
    """Answers per event for a page of events, in one query: a count per state plus ``companions`` (of
    those who accepted), every state present."""
    result = {event_id: Counter({"companions": 0, "zugesagt": 0, "vorlaeufig": 0, "warteliste": 0, "abgesagt": 0,
                                 "offen": 0}) for event_id in event_ids}
    if event_ids:
        rows = db.session.execute(
            select(Invitation.event_id, Invitation.state, func.count(), func.coalesce(func.sum(Invitation.companions), 0))
            .where(Invitation.event_id.in_(event_ids)).group_by(Invitation.event_id, Invitation.state))
        for event_id, state, count, companions in rows:
            result[event_id][state] += count
            if state == "zugesagt":
                result[event_id]["companions"] += int(companions)
    return result


PARTICIPANT_HEADER = ["Name", "Organisation", "E-Mail", "Antwort", "Begleitpersonen", "Bemerkung", "Ernährung", "Antwortweg", "Beantwortet am"]
PARTICIPANT_HEADER += ATTENDANCE_HEADER


def participant_header(event: Event) -> list[str]:
    """The export's columns: the fixed ones, then one per question of the event."""
    return [*PARTICIPANT_HEADER, *(q.label for q in questions_of(event.id))]


def participant_rows(event: Event) -> list[list[Any]]:
    from ..formatting import datum_kurz

    rows = []
    marks = by_invitation(event)
    questions = questions_of(event.id)
    for i in sorted(event.invitations, key=lambda i: (i.organisation_name.lower(), i.name.lower())):
        rows.append([i.name, i.organisation_name, i.email, i.state_label, i.companions, i.remark, i.dietary,
                     i.channel_label, datum_kurz(i.answered_at), *attendance_cells(event, i, marks.get(i.id)),
                     *answer_cells(questions, i)])
    # Walk-ins answered no questions: their question cells stay empty.
    walk_ins = [row + [""] * len(questions)
                for row in walk_in_rows(event, len(PARTICIPANT_HEADER) - len(ATTENDANCE_HEADER))]
    return rows + walk_ins


def export_participants(event: Event, fmt: str, rows: list[list[Any]] | None = None) -> bytes:
    """The participant list as CSV or XLSX (``rows``: ``participant_rows`` if the caller has them already)."""
    from .. import exports

    rows = participant_rows(event) if rows is None else rows
    header = participant_header(event)
    if fmt == "csv":
        return exports.csv_bytes(header, rows)
    if fmt == "xlsx":
        return exports.xlsx_bytes(header, rows, sheet_title="Teilnehmende")
    raise ValidationError("Bitte wählen Sie CSV oder XLSX.")
