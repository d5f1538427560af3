"""GET downloads of name badges and table cards (PDF) from the event page; reading role suffices."""
from __future__ import annotations

from flask import Response, flash, redirect, request, url_for

from ..errors import KiPostError
from . import services
from .badges import badges_pdf
from .views import bp


@bp.get("/veranstaltungen/<int:event_id>/namensschilder.pdf")
def badges(event_id: int):
    event = services.get_event(event_id)
    stock = request.args.get("bogen") or None
    try:
        data, _count = badges_pdf(event, stock)
    except KiPostError as error:
        flash(str(error), "error")
        return redirect(url_for("events.detail", event_id=event_id))
    name = "tischkarten" if (stock or "").startswith("tischkarte") else "namensschilder"
    return Response(data, mimetype="application/pdf",
                    headers={"Content-Disposition": f'attachment; filename="{name}-{event.id}.pdf"'})
