"""An event's own questions: defining them (staff), answering them (personal link, staff entry),
option seats (a workshop's places), and how answers appear in lists, exports and the Art. 15 export.

Answers live on the invitation, ``Invitation.answers`` keyed by the question's id as text:
text → ``str``, yes/no → ``bool``, single choice → the option's id, multiple choice → a list of ids.
A single-choice option may have seats: only people who accepted (Zusage) hold one, with their
companions (the same count as the event's seats); the check runs in ``answers.answer`` under the
event's lock, so concurrent answers never overbook an option.

What a secretariat expects once answers exist (decided here, documented in the README):
- the kind of a question cannot change (the answers would no longer fit): refused;
- an option somebody chose cannot be removed (their choice would vanish silently): refused — rename it
  or close it by lowering its seats;
- renaming an option, or lowering its seats below those taken, is allowed with a warning (nobody is
  signed off; the warning says how many are affected);
- deleting a question with answers needs an explicit confirmation and deletes those answers.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select

from ..auth.services import audit
from ..errors import NotFound, ValidationError
from ..extensions import db
from ..formatting import anzahl
from .models import Event, EventState, Invitation, InvitationState
from .question_models import Question, QuestionKind, QuestionOption

TEXT_MAX = 2000
LABEL_MAX = 300
OPTION_MAX = 200
YES, NO = "ja", "nein"


class QuestionError(ValidationError):
    """One or more answers to the event's questions are wrong; ``errors`` maps field → German message."""

    def __init__(self, errors: Mapping[str, str]):
        self.errors = dict(errors)
        super().__init__("Bitte prüfen Sie Ihre Angaben zu den Fragen.", next(iter(self.errors), None))


class OptionRowError(ValidationError):
    """Problems of single option rows; ``rows`` maps the row's index (as given) → German message."""

    def __init__(self, rows: Mapping[int, str]):
        self.rows = dict(rows)
        super().__init__(next(iter(self.rows.values())), "options")


NAMELESS_ROW = "Bei einer Platzzahl fehlt der Name der Möglichkeit."
NOT_A_CHOICE = "Nur Auswahlfragen haben Möglichkeiten. Bitte die Möglichkeiten leeren oder die Art „Auswahl“ wählen."


# --- Defining questions ----------------------------------------------------------------------------------

@dataclass
class OptionData:
    label: str
    capacity: int | None = None
    id: int | None = None  # an existing option (kept: answers refer to it)


@dataclass
class QuestionData:
    label: str
    kind: str
    required: bool = False
    help_text: str = ""
    options: list[OptionData] = field(default_factory=list)


def questions_of(event_id: int) -> list[Question]:
    query = select(Question).where(Question.event_id == event_id).order_by(Question.position, Question.id)
    return list(db.session.scalars(query))


def get_question(event: Event, question_id: int) -> Question:
    question = db.session.get(Question, question_id)
    if question is None or question.event_id != event.id:
        raise NotFound(f"Frage {question_id} nicht gefunden.")
    return question


def _editable(event: Event) -> None:
    if event.state == EventState.ABGESAGT:
        raise ValidationError("Die Veranstaltung ist abgesagt; ihre Fragen können nicht mehr geändert werden.")


def _clean(data: QuestionData) -> QuestionData:
    label = (data.label or "").strip()
    if not label:
        raise ValidationError("Bitte geben Sie die Frage ein.", "label")
    if len(label) > LABEL_MAX:
        raise ValidationError(f"Die Frage ist zu lang (höchstens {LABEL_MAX} Zeichen).", "label")
    kind = QuestionKind.parse(data.kind)
    if kind is None:
        raise ValidationError("Bitte wählen Sie die Art der Frage.", "kind")
    help_text = (data.help_text or "").replace("\r\n", "\n").strip()
    if len(help_text) > 1000:
        raise ValidationError("Der Hinweis ist zu lang (höchstens 1.000 Zeichen).", "help_text")
    options = [OptionData((o.label or "").strip(), o.capacity, o.id) for o in data.options]
    if kind not in QuestionKind.CHOICE and any(o.label or o.capacity is not None for o in options):
        raise ValidationError(NOT_A_CHOICE, "options")  # never drop what was typed without a word
    # A new row with places but no name (an existing option's emptied name removes it, as the form says).
    if nameless := {n: NAMELESS_ROW for n, o in enumerate(options)
                    if not o.label and o.capacity is not None and o.id is None}:
        raise OptionRowError(nameless)
    options = [o for o in options if o.label or o.id is not None]
    if kind in QuestionKind.CHOICE:
        labels = [o.label for o in options if o.label]
        if len(labels) < 2:
            raise ValidationError("Eine Auswahlfrage braucht mindestens zwei Möglichkeiten.", "options")
        if len({label.casefold() for label in labels}) != len(labels):
            raise ValidationError("Jede Möglichkeit darf nur einmal vorkommen.", "options")
        for option in options:
            if len(option.label) > OPTION_MAX:
                raise ValidationError(f"Eine Möglichkeit ist zu lang (höchstens {OPTION_MAX} Zeichen).", "options")
            if option.capacity is not None:
                if kind != QuestionKind.EINFACH:
                    raise ValidationError("Plätze je Möglichkeit gibt es nur bei einer Auswahl mit einer Möglichkeit.",
                                          "options")
                if not 0 <= option.capacity <= 100000:
                    raise ValidationError("Die Plätze einer Möglichkeit müssen zwischen 0 und 100.000 liegen "
                                          "(leer = unbegrenzt).", "options")
    else:
        options = []  # only emptied rows of options removed along with the choice
    return QuestionData(label, kind, bool(data.required), help_text, options)


def add_question(event: Event, data: QuestionData) -> Question:
    _editable(event)
    data = _clean(data)
    position = db.session.scalar(select(func.coalesce(func.max(Question.position), 0)).where(Question.event_id == event.id))
    question = Question(event_id=event.id, position=int(position or 0) + 1, kind=data.kind, label=data.label,
                        help_text=data.help_text, required=data.required)
    question.options = [QuestionOption(position=n, label=o.label, capacity=o.capacity) for n, o in enumerate(data.options)]
    db.session.add(question)
    db.session.flush()
    audit("frage.angelegt", event, frage_id=question.id)
    return question


def answered_invitations(question: Question) -> list[Invitation]:
    """Invitations with an answer to this question (JSON is filtered here, alike on SQLite and PostgreSQL)."""
    invitations = db.session.scalars(select(Invitation).where(Invitation.event_id == question.event_id))
    return [i for i in invitations if _has_answer((i.answers or {}).get(str(question.id)))]


def _has_answer(value: Any) -> bool:
    return value not in (None, "", [])


def choosers(question: Question) -> Counter:
    """Option id → how many invitations (any state) chose it."""
    counts: Counter = Counter()
    for invitation in answered_invitations(question):
        counts.update(_chosen(question, invitation.answers.get(str(question.id))))
    return counts


def update_question(question: Question, data: QuestionData) -> list[str]:
    """Saves the changes; returns German warnings (renamed options people chose, seats below those taken)."""
    event = db.session.get(Event, question.event_id)
    _editable(event)
    answered = answered_invitations(question)
    kind = QuestionKind.parse(data.kind)
    if kind is not None and kind != question.kind and answered:  # before the options: they cannot help here
        raise ValidationError(f"Die Art der Frage kann nicht mehr geändert werden: {_persons(len(answered))} "
                              "bereits geantwortet. Legen Sie bei Bedarf eine neue Frage an.", "kind")
    data = _clean(data)
    chosen = choosers(question)
    taken = option_seats_taken(event.id)
    existing = {option.id: option for option in question.options}
    warnings = []
    kept: list[QuestionOption] = []
    for position, wanted in enumerate(data.options):
        option = existing.get(wanted.id) if wanted.id is not None else None
        if wanted.id is not None and option is None:
            raise ValidationError("Eine Möglichkeit gehört nicht zu dieser Frage. Bitte laden Sie die Seite neu.",
                                  "options")
        if option is None:
            kept.append(QuestionOption(position=position, label=wanted.label, capacity=wanted.capacity))
            continue
        if not wanted.label:
            continue  # emptied: removed (checked below)
        if wanted.label != option.label and chosen[option.id]:
            warnings.append(f"„{option.label}“ heißt jetzt „{wanted.label}“; {_persons(chosen[option.id], 'hatte', 'hatten')} "
                            "diese Möglichkeit bereits gewählt. Informieren Sie sie bei Bedarf.")
        if wanted.capacity is not None and taken[option.id] > wanted.capacity:
            held = taken[option.id]
            warnings.append(f"Bei „{wanted.label}“ {'ist' if held == 1 else 'sind'} {anzahl(held, 'Platz', 'Plätze')} "
                            "durch Zusagen belegt, mehr als die neu "
                            f"festgelegten {anzahl(wanted.capacity, 'Platz', 'Plätze')}. "
                            "Niemand wird abgemeldet; neu wählen lässt sich die Möglichkeit erst, wenn Plätze frei werden.")
        option.position, option.label, option.capacity = position, wanted.label, wanted.capacity
        kept.append(option)
    kept_ids = {option.id for option in kept if option.id is not None}
    for option in question.options:
        if option.id not in kept_ids and chosen[option.id]:
            raise ValidationError(f"„{option.label}“ wurde bereits von {_persons(chosen[option.id], '', '')} gewählt "
                                  "und kann nicht entfernt werden. Sie können die Möglichkeit umbenennen oder mit "
                                  "0 Plätzen schließen.", "options")
    question.label, question.kind, question.help_text, question.required = data.label, data.kind, data.help_text, data.required
    question.options = kept
    db.session.flush()
    audit("frage.geaendert", event, frage_id=question.id)
    return warnings


def _persons(count: int, singular: str = "hat", plural: str = "haben") -> str:
    verb = singular if count == 1 else plural
    return f"{anzahl(count, 'Person', 'Personen')} {verb}".strip()


def delete_question(question: Question, *, confirmed: bool = False) -> int:
    """Deletes the question; with answers only when ``confirmed`` (then the answers go too). Returns their number."""
    event = db.session.get(Event, question.event_id)
    _editable(event)
    answered = answered_invitations(question)
    if answered and not confirmed:
        who = f"{'hat' if len(answered) == 1 else 'haben'} {anzahl(len(answered), 'Person', 'Personen')}"
        raise ValidationError(f"Zu dieser Frage {who} bereits geantwortet. Um sie trotzdem zu "
                              "löschen, bestätigen Sie bitte, dass diese Antworten mit gelöscht werden.", "confirmed")
    key = str(question.id)
    for invitation in answered:
        invitation.answers = {k: v for k, v in invitation.answers.items() if k != key}
    db.session.delete(question)
    db.session.flush()
    audit("frage.geloescht", event, frage_id=question.id, antworten=len(answered))
    return len(answered)


def move_question(question: Question, step: int) -> None:
    """One place up (-1) or down (+1) among the event's questions."""
    _editable(db.session.get(Event, question.event_id))
    ordered = questions_of(question.event_id)
    index = ordered.index(question)
    other = index + (-1 if step < 0 else 1)
    if 0 <= other < len(ordered):
        ordered[index], ordered[other] = ordered[other], ordered[index]
    for position, item in enumerate(ordered, start=1):
        item.position = position
    db.session.flush()


def copy_questions(source: Event, target: Event) -> None:
    """Copies the questions and options of ``source`` to ``target`` (after its own); answers stay behind."""
    start = len(questions_of(target.id))
    for position, question in enumerate(questions_of(source.id), start=start + 1):
        copy = Question(event_id=target.id, position=position, kind=question.kind, label=question.label,
                        help_text=question.help_text, required=question.required)
        copy.options = [QuestionOption(position=o.position, label=o.label, capacity=o.capacity) for o in question.options]
        db.session.add(copy)
    db.session.flush()


# --- Answering ---------------------------------------------------------------------------------------------

def raw_from_form(questions: Sequence[Question], form: Any) -> dict[int, list[str]]:
    """The posted values per question (``form`` is a MultiDict: ``getlist``)."""
    return {q.id: [value for value in form.getlist(q.field)] for q in questions}


def raw_from_answers(questions: Sequence[Question], answers: Mapping[str, Any] | None) -> dict[int, list[str]]:
    """Stored answers as form values (to fill the answer page)."""
    result: dict[int, list[str]] = {}
    for q in questions:
        value = (answers or {}).get(str(q.id))
        if value is None:
            result[q.id] = []
        elif q.kind == QuestionKind.JANEIN:
            result[q.id] = [YES if value else NO]
        elif isinstance(value, list):
            result[q.id] = [str(v) for v in value]
        else:
            result[q.id] = [str(value)]
    return result


def _one(question: Question, values: list[str], errors: dict[str, str]) -> Any:
    """The answer to one question from its form values, or None (not answered); errors go to ``errors``."""
    values = [v for v in values if v is not None]
    if question.kind == QuestionKind.TEXT:
        if len(values) > 1:
            errors[question.field] = "Bitte geben Sie nur einen Text ein."
            return None
        text = (values[0] if values else "").replace("\r\n", "\n").strip()
        if len(text) > TEXT_MAX:
            errors[question.field] = "Die Antwort ist zu lang (höchstens 2.000 Zeichen)."
            return None
        return text or None
    values = [v.strip() for v in values if v.strip()]
    if not values:
        return None
    if question.kind == QuestionKind.JANEIN:
        if len(values) != 1 or values[0] not in (YES, NO):
            errors[question.field] = "Bitte wählen Sie Ja oder Nein."
            return None
        return values[0] == YES
    known = {option.id for option in question.options}
    try:
        ids = [int(v) for v in values]
    except ValueError:
        ids = []
    if not ids or any(i not in known for i in ids):
        errors[question.field] = "Bitte wählen Sie eine der angebotenen Möglichkeiten."
        return None
    if question.kind == QuestionKind.EINFACH:
        if len(set(ids)) != 1:
            errors[question.field] = "Bitte wählen Sie nur eine Möglichkeit."
            return None
        return ids[0]
    return sorted(set(ids), key=[o.id for o in question.options].index)


def validate_responses(questions: Sequence[Question], raw: Mapping[int, list[str]], *, accepting: bool,
                       previous: Mapping[str, Any] | None = None, keep_unanswered: bool = False) -> dict[str, Any]:
    """The answers to store, checked: type, known option, required (only for a Zusage: who declines
    chooses no workshop). ``keep_unanswered``: a question left empty keeps the earlier answer (the staff
    form, which is not filled with the person's answers). Raises ``QuestionError`` with every problem."""
    previous = dict(previous or {})
    result = dict(previous) if keep_unanswered else {k: v for k, v in previous.items()
                                                     if not k.isdigit() or int(k) not in {q.id for q in questions}}
    errors: dict[str, str] = {}
    for question in questions:
        value = _one(question, list(raw.get(question.id, [])), errors)
        key = str(question.id)
        if question.field in errors:
            continue
        if value is not None:
            result[key] = value
        elif not keep_unanswered:
            result.pop(key, None)
        if accepting and question.required and not _has_answer(result.get(key)):
            errors[question.field] = "Bitte beantworten Sie diese Frage (Pflichtangabe bei einer Zusage)."
    if errors:
        raise QuestionError(errors)
    return result


def _chosen(question: Question, value: Any) -> list[int]:
    if question.kind == QuestionKind.EINFACH and isinstance(value, int) and not isinstance(value, bool):
        return [value]
    if question.kind == QuestionKind.MEHRFACH and isinstance(value, list):
        return [v for v in value if isinstance(v, int)]
    return []


def chosen_options(questions: Sequence[Question], answers: Mapping[str, Any] | None) -> set[int]:
    """The option ids a set of answers chose (single and multiple choice)."""
    return {o for q in questions for o in _chosen(q, (answers or {}).get(str(q.id)))}


def _limited_questions(event_id: int) -> list[Question]:
    return [q for q in questions_of(event_id) if q.kind == QuestionKind.EINFACH and any(o.capacity is not None for o in q.options)]


def option_seats_taken(event_id: int, exclude_id: int | None = None, questions: Sequence[Question] | None = None) -> Counter:
    """Option id → seats held (1 + companions of each accepted invitation that chose it)."""
    questions = [q for q in (questions if questions is not None else questions_of(event_id)) if q.kind == QuestionKind.EINFACH]
    taken: Counter = Counter()
    if not questions:
        return taken
    query = select(Invitation.answers, Invitation.companions).where(
        Invitation.event_id == event_id, Invitation.state == InvitationState.ZUGESAGT)
    if exclude_id is not None:
        query = query.where(Invitation.id != exclude_id)
    for answers, companions in db.session.execute(query):
        for question in questions:
            for option_id in _chosen(question, (answers or {}).get(str(question.id))):
                taken[option_id] += 1 + (companions or 0)
    return taken


def check_option_seats(invitation: Invitation, answers: Mapping[str, Any], seats: int, *,
                       previous_state: str, previous_answers: Mapping[str, Any], previous_seats: int) -> None:
    """Call under the event's lock, before an invitation becomes (or stays) a Zusage: every chosen option
    with seats must have room. Someone who already holds the seat keeps it (a repeated answer, fewer
    companions), even if the seats were lowered below those taken meanwhile."""
    questions = _limited_questions(invitation.event_id)
    if not questions:
        return
    taken = option_seats_taken(invitation.event_id, exclude_id=invitation.id, questions=questions)
    errors = {}
    for question in questions:
        held = (_chosen(question, previous_answers.get(str(question.id)))
                if previous_state == InvitationState.ZUGESAGT else [])
        for option in question.options:
            if option.capacity is None or option.id not in _chosen(question, answers.get(str(question.id))):
                continue
            if option.id in held and seats <= previous_seats:
                continue
            free = option.capacity - taken[option.id]
            if seats > free:
                errors[question.field] = (
                    f"„{option.label}“ ist ausgebucht. Bitte wählen Sie eine andere Möglichkeit." if free <= 0 else
                    f"Bei „{option.label}“ {'ist' if free == 1 else 'sind'} nur noch {anzahl(free, 'Platz', 'Plätze')} frei "
                    f"(Sie melden {anzahl(seats, 'Person', 'Personen')} an). Bitte wählen Sie eine andere Möglichkeit.")
    if errors:
        raise QuestionError(errors)


def fits_options(invitation: Invitation) -> bool:
    """Whether a waiting person's chosen options still have room (moving up from the waiting list)."""
    try:
        check_option_seats(invitation, invitation.answers or {}, invitation.seats, previous_state=invitation.state,
                           previous_answers={}, previous_seats=0)
    except QuestionError:
        return False
    return True


def option_free(event_id: int, questions: Sequence[Question] | None = None) -> dict[int, int]:
    """Option id → seats still free, for options with seats (the answer page shows full ones as full)."""
    questions = questions if questions is not None else questions_of(event_id)
    taken = option_seats_taken(event_id, questions=questions)
    return {o.id: max(o.capacity - taken[o.id], 0) for q in questions if q.kind == QuestionKind.EINFACH
            for o in q.options if o.capacity is not None}


# --- Showing answers ---------------------------------------------------------------------------------------

def answer_text(question: Question, value: Any) -> str:
    if not _has_answer(value):
        return ""
    if question.kind == QuestionKind.TEXT:
        return str(value)
    if question.kind == QuestionKind.JANEIN:
        return "Ja" if value else "Nein"
    labels = {o.id: o.label for o in question.options}
    return ", ".join(labels.get(v, "(entfernte Möglichkeit)") for v in _chosen(question, value))


def answer_cells(questions: Sequence[Question], invitation: Invitation) -> list[str]:
    """One cell per question (export columns, in the questions' order)."""
    return [answer_text(q, (invitation.answers or {}).get(str(q.id))) for q in questions]


def readable_answers(invitation: Invitation, questions: Sequence[Question] | None = None) -> dict[str, str]:
    """Question → answer in words (participant list, Art. 15 export)."""
    found = questions if questions is not None else questions_of(invitation.event_id)
    return {q.label: text for q in found
            if (text := answer_text(q, (invitation.answers or {}).get(str(q.id))))}


def clear_text_answers(invitation: Invitation) -> None:
    """Erasure: free-text answers go; yes/no and choices stay (like the answer itself they are no
    personal text, and the option seats of the event must stay right)."""
    invitation.answers = {k: v for k, v in (invitation.answers or {}).items() if not isinstance(v, str)}
