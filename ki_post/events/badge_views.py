"""Downloads of name badges and table cards (PDF) from the event page.

Plain badges are a GET download (reading role). Badges with the personal check-in QR code are a POST:
a person who has no check-in code yet gets one, which is a change (and needs sachbearbeitung).
"""
from __future__ import annotations

from flask import Response, flash, redirect, request, url_for
from flask_wtf import FlaskForm

from ..errors import KiPostError
from ..transaction import transaction
from . import services
from .attendance import checkin_link
from .badges import badges_pdf, download_name, stock_for_badges
from .blueprint import bp


def _pdf_response(data: bytes, filename: str) -> Response:
    return Response(data, mimetype="application/pdf", headers={"Content-Disposition": f'attachment; filename="{filename}"'})


@bp.get("/veranstaltungen/<int:event_id>/namensschilder.pdf")
def badges(event_id: int):
    """?bogen=… chooses the stock; ?titel=nein leaves the event's title off the badges."""
    event = services.get_event(event_id)
    stock = request.args.get("bogen") or None
    try:
        data, _count = badges_pdf(event, stock, event_title=request.args.get("titel") != "nein")
    except KiPostError as error:
        flash(str(error), "error")
        return redirect(url_for("events.detail", event_id=event_id))
    return _pdf_response(data, download_name(stock_for_badges(stock), event.id))


@bp.post("/veranstaltungen/<int:event_id>/namensschilder-qr.pdf")
def badges_with_qr(event_id: int):
    """Badges whose QR code opens the person's check-in (the same code as in the confirmation mail)."""
    event = services.get_event(event_id)
    form = FlaskForm()
    if not form.validate_on_submit():
        flash("Das Formular ist abgelaufen. Bitte die Seite neu laden und noch einmal versuchen.", "error")
        return redirect(url_for("events.detail", event_id=event_id))
    data, stock = None, request.form.get("bogen") or None
    with transaction() as done:
        data, _count = badges_pdf(event, stock, qr_content=checkin_link)
    if not done.ok or data is None:
        return redirect(url_for("events.detail", event_id=event_id))
    return _pdf_response(data, download_name(stock_for_badges(stock), event.id, qr=True))
