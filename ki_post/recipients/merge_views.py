"""The merge page: combine two contacts that are the same person (choose values, preview, confirm)."""
from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for

from ..auth.access import requires_role

from ..transaction import transaction
from . import duplicates, merging, picking, services
from .forms import ConfirmForm
from .blueprint import bp

HISTORY_LABELS = {"letters": "Briefe", "messages": "Nachrichten", "invitations": "Einladungen"}


def _other(target, raw: str):
    """The contact to merge into ``target``: by id; None when not (or wrongly) chosen."""
    if not raw.isdigit() or int(raw) == target.id:
        return None
    other = services.get_contact(int(raw))
    return other if other.anonymised_at is None else None


@bp.route("/kontakte/<int:contact_id>/zusammenfuehren", methods=["GET", "POST"])
@requires_role("sachbearbeitung")  # a form page: reading it is for those who may send it
def contact_merge(contact_id: int):
    """GET without ``mit``: pick the duplicate (likely ones first, or by search). With ``mit``: per field
    which value to keep; "Vorschau" shows the result, "Zusammenführen" (with the confirmation) does it."""
    target = services.get_contact(contact_id)
    if target.anonymised_at is not None:
        flash("Eine anonymisierte Ansprechperson kann nicht zusammengeführt werden.", "warning")
        return redirect(url_for("recipients.contact", contact_id=target.id))
    form = ConfirmForm()
    other = _other(target, request.values.get("mit", ""))
    if other is None:
        search = (request.args.get("q") or "").strip()[:200]
        likely = duplicates.find_duplicate(email=target.email, first_name=target.first_name, last_name=target.last_name,
                                           organisation_id=target.organisation_id, exclude_id=target.id)
        found = [c for c in picking.candidates(search) if c.id != target.id][:50] if search else []
        return render_template("recipients/contact_merge.html", target=target, other=None, likely=likely,
                               search=search, found=found, form=form)
    choices = {name: request.form.get(f"feld-{name}", "") for name in merging.MERGE_FIELDS} if request.method == "POST" else None
    rows = merging.plan(target, other, choices)
    status, error = 200, None
    if request.method == "POST" and form.validate_on_submit() and request.form.get("action") == "zusammenfuehren":
        if request.form.get("bestaetigt") != "ja":
            status, error = 422, "Bitte bestätigen Sie, dass beide Einträge dieselbe Person sind."
        else:
            with transaction() as done:
                merging.merge_contacts(target, other, choices)
            if done.ok:
                flash("Die Einträge sind zusammengeführt. Verteiler, Einladungen, Nachrichten und Briefe gehören jetzt "
                      "zu dieser Ansprechperson; der andere Eintrag ist gelöscht.", "success")
                return redirect(url_for("recipients.contact", contact_id=target.id))
            return redirect(url_for("recipients.contact_merge", contact_id=target.id, mit=other.id))
    history = {HISTORY_LABELS.get(name, name): len(items) for name, items in services.contact_history(other).items()}
    return render_template("recipients/contact_merge.html", target=target, other=other, rows=rows, form=form,
                           preview=request.method == "POST", error=error, history=history,
                           lists=services.verteiler_of(other)), status



