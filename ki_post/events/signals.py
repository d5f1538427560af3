"""What the events services tell other parts of the events package (and the app shell) without importing them.

- ``event_copied``: ``send(None, source=event, target=event)`` after ``copying.copy_event`` has created and
  flushed the copy, inside the same transaction: receivers copy what they keep per event (e.g. the
  per-event questions: ``copy_questions(source, target)``). Connect a named function (blinker keeps weak
  references; a lambda would vanish) or pass ``weak=False``.
"""
from __future__ import annotations

from blinker import Namespace

_signals = Namespace()

event_copied = _signals.signal("event-copied")
