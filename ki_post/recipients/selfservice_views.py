""""Angaben prüfen": the officer's public page behind her personal link, and the review queue."""
from __future__ import annotations

from email.utils import parseaddr

from flask import Blueprint, current_app, flash, redirect, render_template, url_for
from flask_login import current_user

from ..auth.access import public, requires_role
from ..extensions import limiter
from ..transaction import transaction
from . import selfservice
from .forms import ConfirmForm, CorrectionForm, HandoverForm, RejectForm
from .models import ANREDEN, Contact

bp = Blueprint("selfservice", __name__)
PUBLIC_HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Robots-Tag": "noindex"}
ADDRESS = ("authority", "street", "postcode", "town")


def _limit() -> str:
    return current_app.config.get("RSVP_RATE_LIMIT", "30 per minute")


def _contact(link: str) -> Contact | tuple:
    try:
        return selfservice.contact_by_token(link)
    except selfservice.LinkExpired:
        page = render_template("errors/error.html", code=410, title="Link abgelaufen",
                               text="Dieser Link zum Prüfen Ihrer Angaben ist abgelaufen oder gilt nicht mehr. "
                                    "Bitte wenden Sie sich an die absendende Stelle; Sie erhalten dann einen neuen Link.")
        return page, 410, PUBLIC_HEADERS


def _contact_point() -> tuple[str, str]:
    config = current_app.config
    name, address = parseaddr(config.get("MAIL_REPLY_TO") or config.get("MAIL_DEFAULT_SENDER") or "")
    return name, address


def _page(contact: Contact, link: str, correction: CorrectionForm | None = None, handover: HandoverForm | None = None,
          status: int = 200):
    if correction is None:
        correction = CorrectionForm()
        for name in ("anrede", "academic_title", "function", "phone"):
            getattr(correction, name).data = getattr(contact, name)
        if contact.organisation is not None:
            for name in ADDRESS:
                getattr(correction, name).data = getattr(contact.organisation, name)
    page = render_template("recipients/selfservice.html", contact=contact, token=link, correction=correction,
                           handover=handover or HandoverForm(), confirm=ConfirmForm(), anreden=ANREDEN,
                           pending=selfservice.open_proposals(contact), contact_point=_contact_point(),
                           link_days=current_app.config.get("SELFSERVICE_LINK_DAYS", 60))
    return page, status, PUBLIC_HEADERS


@bp.get("/angaben/<link>")
@public
def page(link: str):
    contact = _contact(link)
    if not isinstance(contact, Contact):
        return contact
    return _page(contact, link)


@bp.post("/angaben/<link>/bestaetigen")
@public
@limiter.limit(_limit, error_message="Zu viele Anfragen von Ihrem Anschluss. Bitte warten Sie eine Minute.")
def confirm(link: str):
    contact = _contact(link)
    if not isinstance(contact, Contact):
        return contact
    if ConfirmForm().validate_on_submit():
        with transaction() as done:
            selfservice.confirm_unchanged(contact)
        if done.ok:
            flash("Vielen Dank! Sie haben bestätigt, dass Ihre Angaben stimmen.", "success")
    return redirect(url_for("selfservice.page", link=link))


@bp.post("/angaben/<link>/korrektur")
@public
@limiter.limit(_limit, error_message="Zu viele Anfragen von Ihrem Anschluss. Bitte warten Sie eine Minute.")
def correct(link: str):
    contact = _contact(link)
    if not isinstance(contact, Contact):
        return contact
    form = CorrectionForm()
    if form.validate_on_submit():
        data = {name: getattr(form, name).data for name in ("anrede", "academic_title", "function", "phone")}
        data.update({f"organisation.{name}": getattr(form, name).data for name in ADDRESS})
        with transaction(form, field_map={f"organisation.{name}": name for name in ADDRESS}) as done:
            selfservice.propose_correction(contact, data, form.message.data or "")
        if done.ok:
            flash("Vielen Dank! Ihre Korrektur ist eingegangen. Das Sekretariat prüft sie und übernimmt sie in den Verteiler.",
                  "success")
            return redirect(url_for("selfservice.page", link=link))
    return _page(contact, link, correction=form, status=422)


@bp.post("/angaben/<link>/nachfolge")
@public
@limiter.limit(_limit, error_message="Zu viele Anfragen von Ihrem Anschluss. Bitte warten Sie eine Minute.")
def hand_over(link: str):
    contact = _contact(link)
    if not isinstance(contact, Contact):
        return contact
    form = HandoverForm()
    if form.validate_on_submit():
        with transaction(form) as done:
            selfservice.propose_handover(contact, {name: getattr(form, name).data for name in
                                                   ("first_name", "last_name", "email", "function")},
                                         form.message.data or "")
        if done.ok:
            flash("Vielen Dank! Ihre Mitteilung ist eingegangen. Das Sekretariat trägt Ihre Nachfolge in den Verteiler ein.",
                  "success")
            return redirect(url_for("selfservice.page", link=link))
    return _page(contact, link, handover=form, status=422)


# --- Review queue (secretariat) --------------------------------------------------------------------------

@bp.get("/verteiler/vorschlaege")
def review():
    proposals = selfservice.pending_proposals()
    return render_template("recipients/review.html", proposals=proposals, diff=selfservice.diff_rows,
                           confirm=ConfirmForm(), reject_form=RejectForm())


@bp.post("/verteiler/vorschlaege/<int:proposal_id>/uebernehmen")
@requires_role("sachbearbeitung")
def accept(proposal_id: int):
    proposal = selfservice.get_proposal(proposal_id)
    if ConfirmForm().validate_on_submit():
        with transaction() as done:
            result = selfservice.accept(proposal, user_id=current_user.id)
        if done.ok:
            if result.successor is not None:
                moved = result.moved or {}
                flash(f"Übernommen: {result.successor.full_name or result.successor.email} ist jetzt zuständig "
                      f"({result.lists_moved} Verteiler, {moved.get('einladungen', 0)} Einladung(en) neu versendet, "
                      f"{moved.get('zurueckgezogen', 0)} Nachricht(en) an die bisherige Person zurückgezogen).", "success")
            else:
                flash("Die Korrektur ist übernommen.", "success")
    return redirect(url_for("selfservice.review"))


@bp.post("/verteiler/vorschlaege/<int:proposal_id>/ablehnen")
@requires_role("sachbearbeitung")
def reject(proposal_id: int):
    proposal = selfservice.get_proposal(proposal_id)
    form = RejectForm()
    if form.validate_on_submit():
        with transaction() as done:
            selfservice.reject(proposal, form.reason.data or "", user_id=current_user.id)
        if done.ok:
            flash("Der Vorschlag ist abgelehnt; am Verteiler hat sich nichts geändert.", "success")
    return redirect(url_for("selfservice.review"))
