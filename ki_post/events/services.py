"""The events package's services, by domain word (functions flush, never commit; callers commit):

- ``operations``: create, change, publish and cancel an event;
- ``mails``: what the mails of an event say, rendered and queued with the facts they tell;
- ``delivery``: what each invited person was told, derived from the outbox;
- ``superseding``: unsent mails made true again after a change; updates for those told before;
- ``invitations``: who is invited, inviting, and reminders;
- ``answers``: answers by link or staff, seats, waiting list;
- ``participants``: overview and participant lists;
- ``calendar_replies``: iTIP REPLY mails matched to invitations;
- ``mailbox``: every mail of the functional mailbox (calendar replies, delivery reports, automatic replies);
- ``imap``: polling the functional mailbox.

This module re-exports their public functions, so views, CLI and other packages have one address.
"""
from __future__ import annotations

from .answers import ANSWER_STATES, AnswerResult, answer, deadline_passed, invitation_by_token, seats_taken
from .calendar_replies import (PARTSTAT_TO_STATE, IngestResult, apply_reply_mail, assign_reply, assignable, dismiss_reply,
                               unmatched_replies)
from .delivery import Delivery, deliveries, delivery_of
from .imap import poll_imap
from .mailbox import MailboxResult, MailOutcome, FileOutcome, ingest_files, ingest_mails, ingest_path, process_mail
from .invitations import (InviteResult, ReminderResult, add_invitations, circular_attachment, invite, last_reminder,
                          recent_reminder, reminder_recipients, send_reminders, verteiler_id_by_name)
from .mails import RSVP_PATH, EventFacts, changes, event_mailings, rsvp_link, sender_lines
from .operations import (CALENDAR_FIELDS, MAX_COMPANIONS, CancelResult, EventData, UpdateResult, cancel_event,
                         cancel_recipients, change_fields, create_event, event_data, get_event, list_events, parse_local,
                         publish_event, update_event)
from .participants import Overview, answer_counts, export_participants, overview, participant_rows
from .superseding import Superseded, supersede

__all__ = [
    "ANSWER_STATES", "AnswerResult", "answer", "deadline_passed", "invitation_by_token", "seats_taken",
    "PARTSTAT_TO_STATE", "IngestResult", "apply_reply_mail", "assign_reply", "assignable", "dismiss_reply",
    "ingest_mails", "ingest_path", "FileOutcome", "ingest_files", "unmatched_replies", "MailboxResult", "MailOutcome", "process_mail", "Delivery", "deliveries", "delivery_of", "poll_imap",
    "InviteResult", "ReminderResult", "add_invitations", "circular_attachment", "invite", "last_reminder",
    "recent_reminder", "reminder_recipients", "send_reminders", "verteiler_id_by_name", "RSVP_PATH", "EventFacts",
    "changes", "event_mailings", "rsvp_link", "sender_lines", "CALENDAR_FIELDS", "MAX_COMPANIONS", "CancelResult", "EventData", "UpdateResult",
    "cancel_event", "cancel_recipients", "change_fields", "create_event", "event_data", "get_event", "list_events",
    "parse_local", "publish_event", "update_event", "Overview", "answer_counts", "export_participants",
    "overview", "participant_rows", "Superseded", "supersede",
]
