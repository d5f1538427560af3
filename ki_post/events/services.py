"""The events package's services, by domain word (functions flush, never commit; callers commit):

- ``operations``: create, change, publish and cancel an event;
- ``mails``: rendering and queueing the mails of an event;
- ``invitations``: who is invited, inviting, updates and reminders;
- ``answers``: answers by link or staff, seats, waiting list;
- ``participants``: overview and participant lists;
- ``calendar_replies``: iTIP REPLY mails matched to invitations;
- ``imap``: polling the functional mailbox.

This module re-exports their public functions, so views, CLI and other packages have one address.
"""
from __future__ import annotations

from .answers import ANSWER_STATES, AnswerResult, answer, deadline_passed, invitation_by_token, seats_taken
from .calendar_replies import (PARTSTAT_TO_STATE, IngestResult, apply_reply_mail, assign_reply, ingest_mails, ingest_path,
                               unmatched_replies)
from .imap import poll_imap
from .invitations import (InviteResult, add_invitations, cancel_event, cancel_recipients, circular_attachment, invite,
                          reminder_recipients, send_reminders, send_update, verteiler_id_by_name)
from .mails import RSVP_PATH, mail_context, rsvp_link
from .operations import (MAX_COMPANIONS, EventData, create_event, get_event, list_events, parse_local, publish_event,
                         update_event)
from .participants import PARTICIPANT_HEADER, Overview, export_participants, overview, participant_rows

__all__ = [
    "ANSWER_STATES", "AnswerResult", "answer", "deadline_passed", "invitation_by_token", "seats_taken",
    "PARTSTAT_TO_STATE", "IngestResult", "apply_reply_mail", "assign_reply", "ingest_mails", "ingest_path",
    "unmatched_replies", "poll_imap", "InviteResult", "add_invitations", "cancel_event", "cancel_recipients",
    "circular_attachment", "invite", "reminder_recipients", "send_reminders", "send_update", "verteiler_id_by_name",
    "RSVP_PATH", "mail_context", "rsvp_link", "MAX_COMPANIONS", "EventData", "create_event", "get_event", "list_events",
    "parse_local", "publish_event", "update_event", "PARTICIPANT_HEADER", "Overview", "export_participants",
    "overview", "participant_rows",
]
