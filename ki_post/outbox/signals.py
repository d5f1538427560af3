"""What the outbox tells the packages above it, which it must not import.

- ``messages_returned``: ``send(None, message_ids=[…])`` when messages that had been claimed (or given
  up) are waiting to be sent again, or failed for good: after a temporary failure, "erneut senden"
  or "fehlgeschlagene erneut senden". What they say may have been overtaken meanwhile (a changed
  event), and what was planned after them may have assumed they had arrived. Sent inside the
  transaction that made the change; receivers rewrite or withdraw through ``outbox.topics``.
"""
from __future__ import annotations

from blinker import Namespace

_signals = Namespace()

messages_returned = _signals.signal("messages-returned")
