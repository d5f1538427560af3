"""What the Verteiler tells the packages above it, which it must not import.

Higher layers (outbox, letters, events) connect receivers at start-up; the recipients services send
inside the same transaction, so the receivers' work commits or rolls back together with the change.

- ``contacts_changed``: ``send(None, contact_ids=[…])`` after a change to contacts or their
  organisation (form, import, organisation edit) has been flushed: messages still waiting for those
  people should be rendered again with the current data.
- ``contact_erasing``: ``send(None, contact=contact, delete=bool)`` right before a contact is
  anonymised or deleted, while every row still carries the contact's id: withdraw what still waits
  for that person and scrub their personal data wherever no record-keeping duty requires it.
- ``contact_handed_over``: ``send(None, predecessor=contact, successor=contact)`` when the secretariat
  accepts "Ich bin nicht mehr zuständig": the successor exists and holds the Verteiler memberships, the
  predecessor is still active. Receivers move what they own (open invitations to coming events) and
  return a dict of counts for the audit entry.
- ``contacts_merged``: ``send(None, source=contact, target=contact)`` while two contacts for the same
  person are merged, before ``source`` is deleted: re-point every row that names ``source`` by id to
  ``target`` (the history moves with the person; past counts stay as they are). Return counts.
"""
from __future__ import annotations

from blinker import Namespace

_signals = Namespace()

contacts_changed = _signals.signal("contacts-changed")
contact_erasing = _signals.signal("contact-erasing")
contact_handed_over = _signals.signal("contact-handed-over")
contacts_merged = _signals.signal("contacts-merged")
