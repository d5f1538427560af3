"""Demo wiring: the shipped template and the sender profile exist (idempotent)."""
from __future__ import annotations

from . import services


def load_demo() -> dict[str, int]:
    created = services.ensure_shipped_templates()
    services.ensure_sender_profile()
    return {"letter_templates": created}
