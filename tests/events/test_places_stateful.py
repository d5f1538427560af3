"""Seats and workshop places over many answers: random sequences of Zusagen, Absagen, changed workshops and
companions, and erasures, checked after every step against an independent model (Hypothesis
RuleBasedStateMachine, both databases).

The model is the test's own bookkeeping of the rules as the README states them, not KI-Post's code:
- a Zusage takes 1 + companions seats of the event and of the chosen workshop (if it has places);
- a Zusage beyond the event's free seats goes to the waiting list, unless the person was already in
  (then it is refused and nothing changes); a Zusage whose workshop has no room is refused;
- someone keeps the places they hold when they answer again with no more people;
- when a Zusage ends or shrinks, the waiting list moves up first come, first served: it stops at the
  first person the event has no seats for and passes over one whose workshop is full;
- an erasure changes no seat and no place.

Invariants after every step: no workshop and no event is ever overbooked, and every person's answer,
companions and workshop in the database equal the model's.

Sequences that matter are several steps long (a workshop full, the event full, someone waiting for that
workshop, a Zusage ending): the strategies lean towards the small workshop and few companions, and CI runs
60 sequences (fewer missed the waiting-list rule when it was broken on purpose). Longer locally:
``KI_POST_STATEFUL_EXAMPLES=300 KI_POST_STATEFUL_STEPS=60 KI_POST_STATEFUL_RANDOM=1 pytest -p no:timeout
tests/events/test_places_stateful.py``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule, run_state_machine_as_test
from sqlalchemy import select

from ki_post.errors import ValidationError
from ki_post.events import questions, services
from ki_post.events.models import Invitation
from ki_post.events.questions import OptionData, QuestionData
from ki_post.extensions import db
from ki_post.recipients.models import Contact
from ki_post.recipients.services import anonymise_contact

EXAMPLES = int(os.environ.get("KI_POST_STATEFUL_EXAMPLES", "60"))
STEPS = int(os.environ.get("KI_POST_STATEFUL_STEPS", "30"))
RANDOM = os.environ.get("KI_POST_STATEFUL_RANDOM", "") not in ("", "0", "false")
PEOPLE = 8
WORKSHOPS = {"A": 2, "B": 3, "C": None}  # places; C unlimited


@dataclass
class Person:
    state: str = "offen"
    companions: int = 0
    workshop: str | None = None
    waiting_since: int = 0  # the model's order of joining the waiting list


def test_seats_and_workshop_places_over_many_answers(app, make_event, make_contacts):
    examples = iter(range(10**6))

    class Places(RuleBasedStateMachine):
        @initialize(capacity=st.sampled_from([None, 4, 5]))
        def setup(self, capacity):
            self.capacity = capacity
            event = make_event(capacity=capacity, companions_allowed=2)
            services.publish_event(event)
            services.add_invitations(event, make_contacts(PEOPLE, prefix=f"lauf{next(examples)}x"))
            question = questions.add_question(event, QuestionData(
                "Workshop", "einfachauswahl", options=[OptionData(name, places) for name, places in WORKSHOPS.items()]))
            db.session.commit()
            self.event_id, self.question_id = event.id, question.id
            self.option_ids = {option.label: option.id for option in question.options}
            self.invitation_ids = [invitation.id for invitation in event.invitations]
            self.model = [Person() for _ in range(PEOPLE)]
            self.erased: set[int] = set()
            self.clock = 0

        # --- the model -----------------------------------------------------------------------------------
        def _seats(self, exclude: int | None = None) -> int:
            return sum(1 + p.companions for i, p in enumerate(self.model) if p.state == "zugesagt" and i != exclude)

        def _places(self, workshop: str, exclude: int | None = None) -> int:
            return sum(1 + p.companions for i, p in enumerate(self.model)
                       if p.state == "zugesagt" and p.workshop == workshop and i != exclude)

        def _workshop_has_room(self, index: int, workshop: str | None, seats: int, before: Person) -> bool:
            limit = WORKSHOPS.get(workshop) if workshop else None
            if limit is None:
                return True
            if before.state == "zugesagt" and before.workshop == workshop and seats <= 1 + before.companions:
                return True  # holds these places already
            return self._places(workshop, exclude=index) + seats <= limit

        def _expected(self, index: int, state: str, workshop: str | None, companions: int) -> None:
            """Apply one answer to the model (or leave it unchanged when KI-Post must refuse)."""
            before = self.model[index]
            companions = companions if state == "zugesagt" else 0
            seats = 1 + companions
            new_state = state
            if state == "zugesagt" and self.capacity is not None and self._seats(exclude=index) + seats > self.capacity:
                if before.state == "zugesagt":
                    self.refused = True
                    return
                new_state = "warteliste"
            if new_state == "zugesagt" and not self._workshop_has_room(index, workshop, seats, before):
                self.refused = True
                return
            self.clock += 1
            waiting_since = (before.waiting_since if before.state == "warteliste" else self.clock) \
                if new_state == "warteliste" else 0
            self.model[index] = Person(new_state, companions, workshop, waiting_since)
            if before.state == "zugesagt":
                self._move_up()

        def _move_up(self) -> None:
            waiting = sorted((p.waiting_since, i) for i, p in enumerate(self.model) if p.state == "warteliste")
            for _since, i in waiting:
                person = self.model[i]
                seats = 1 + person.companions
                if self.capacity is not None and self._seats() + seats > self.capacity:
                    break
                limit = WORKSHOPS.get(person.workshop) if person.workshop else None
                if limit is not None and self._places(person.workshop) + seats > limit:
                    continue
                person.state, person.waiting_since = "zugesagt", 0

        # --- the steps -----------------------------------------------------------------------------------
        @precondition(lambda self: len(self.erased) < PEOPLE)
        @rule(who=st.integers(0, PEOPLE - 1), state=st.sampled_from(["zugesagt", "zugesagt", "abgesagt"]),
              workshop=st.sampled_from(["A", "A", "B", "C", None]), companions=st.sampled_from([0, 0, 1, 2]))
        def answer(self, who, state, workshop, companions):
            if who in self.erased:
                return
            self.refused = False
            self._expected(who, state, workshop, companions)
            invitation = db.session.get(Invitation, self.invitation_ids[who])
            responses = {self.question_id: [str(self.option_ids[workshop])] if workshop else []}
            try:
                services.answer(invitation, state, companions=companions, responses=responses, channel="telefon")
                db.session.commit()
                refused = False
            except ValidationError:
                db.session.rollback()
                refused = True
            assert refused == self.refused, (f"Person {who}: {state} mit Workshop {workshop} und {companions} "
                                             f"Begleitpersonen {'abgelehnt' if refused else 'angenommen'}")

        @rule(who=st.integers(0, PEOPLE - 1))
        def erase(self, who):
            if who in self.erased:
                return
            invitation = db.session.get(Invitation, self.invitation_ids[who])
            anonymise_contact(db.session.get(Contact, invitation.contact_id))
            db.session.commit()
            self.erased.add(who)

        # --- what must hold ------------------------------------------------------------------------------
        def _rows(self) -> list[Invitation]:
            db.session.expire_all()
            return list(db.session.scalars(select(Invitation).where(Invitation.id.in_(self.invitation_ids))
                                           .order_by(Invitation.id)))

        @invariant()
        def never_overbooked(self):
            rows = self._rows()
            taken = questions.option_seats_taken(self.event_id)
            for name, places in WORKSHOPS.items():
                if places is not None:
                    assert taken[self.option_ids[name]] <= places, f"Workshop {name} überbucht"
            if self.capacity is not None:
                assert sum(row.seats for row in rows if row.state == "zugesagt") <= self.capacity, "Plätze überbucht"

        @invariant()
        def database_equals_the_model(self):
            names = {option_id: name for name, option_id in self.option_ids.items()}
            for index, row in enumerate(self._rows()):
                chosen = (row.answers or {}).get(str(self.question_id))
                workshop = names.get(int(chosen)) if chosen not in (None, "", []) else None
                expected = self.model[index]
                assert (row.state, row.companions, workshop) == (expected.state, expected.companions, expected.workshop), \
                    f"Person {index}"

    run_state_machine_as_test(Places, settings=settings(
        max_examples=EXAMPLES, stateful_step_count=STEPS, deadline=None, derandomize=not RANDOM,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]))
