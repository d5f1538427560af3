"""Pages of the Verteiler: contacts, organisations, lists, import, export, DSGVO."""
from __future__ import annotations

import json
from typing import Any

from flask import Response, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy.exc import IntegrityError

from ..errors import NotFound, ValidationError
from ..extensions import db
from ..auth.access import requires_role
from ..transaction import get_or_404, transaction
from .blueprint import bp
from . import duplicates, freshness, picking, services, uploads
from .addressing import address_lines, role_wording, salutation
from .forms import ConfirmForm, ContactForm, ImportApplyForm, ImportUploadForm, OrganisationForm, VerteilerForm
from .importer import CONCURRENT_CHANGE, EXTRA, FIELDS, IGNORE, ImportFileError, preview_import
from .models import ORGANISATION_KINDS, REGIERUNGSBEZIRKE, Contact, Organisation


PER_PAGE = 50
ACTIVE_CHOICES = {"aktiv": "nur aktive", "inaktiv": "nur inaktive", "alle": "alle"}


def _list_filters(args) -> dict[str, Any]:
    active = args.get("active", "aktiv")
    filters: dict[str, Any] = {
        "q": args.get("q", ""),
        "kind": args.get("kind", ""),
        "regierungsbezirk": args.get("regierungsbezirk", ""),
        "verteiler_id": args.get("verteiler_id", ""),
        "organisation_id": args.get("organisation_id", ""),
        "frische": args.get("frische", ""),
    }
    if active in ("aktiv", "inaktiv"):
        filters["active"] = active == "aktiv"
    return services.clean_filter(filters)


def _download(data: bytes, filename: str, mimetype: str) -> Response:
    response = Response(data, mimetype=mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.headers["Cache-Control"] = "no-store"
    return response


# --- Contacts ---------------------------------------------------------------------------------------

@bp.get("/")
def contacts():
    sort = request.args.get("sort", "organisation")
    sort = sort if sort in services.SORTS else "organisation"
    descending = request.args.get("dir") == "desc"
    filter_error = None
    try:
        filters = _list_filters(request.args)
        statement = services.contacts_query(filters, sort, descending)
    except (ValidationError, NotFound) as error:
        filter_error = str(error)
        filters = {"active": True}
        statement = services.contacts_query(filters, sort, descending)
    page = db.paginate(statement, per_page=PER_PAGE, error_out=False, count=True)
    return render_template(
        "recipients/contacts.html", page=page, filters=filters, sort=sort, descending=descending, sorts=services.SORTS,
        kinds=ORGANISATION_KINDS, bezirke=REGIERUNGSBEZIRKE, verteiler_list=services.all_verteiler(),
        active=request.args.get("active", "aktiv"), active_choices=ACTIVE_CHOICES, filter_error=filter_error,
        export_form=ConfirmForm(), freshness_choices=freshness.CHOICES,
    )


@bp.post("/export")
def export():
    fmt = request.form.get("format", "csv")
    try:
        verteiler_id = request.form.get("list_id") or None
        verteiler = services.get_verteiler(int(verteiler_id)) if verteiler_id else None
        filters = None if verteiler else _list_filters(request.form)
        data, _count = services.export_contacts(fmt, filters=filters, verteiler=verteiler)
    except (ValidationError, NotFound, ValueError) as error:
        flash(f"Der Export ist nicht möglich: {error}", "error")
        return redirect(url_for("recipients.contacts"))
    db.session.commit()
    name = "verteiler"
    if fmt == "csv":
        return _download(data, f"{name}.csv", "text/csv")  # Werkzeug adds "; charset=utf-8" to text types
    return _download(data, f"{name}.xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")


def _contact_form(contact: Contact | None) -> ContactForm:
    form = ContactForm(obj=contact)
    form.organisation_id.choices = [("", "– keine –")] + [(str(i), name) for i, name in services.organisation_choices()]
    if request.method == "GET":
        if contact is not None:
            form.organisation_id.data = str(contact.organisation_id or "")
        elif request.args.get("organisation_id"):
            form.organisation_id.data = request.args["organisation_id"]
    return form


def _contact_data(form: ContactForm) -> dict[str, Any]:
    return {name: getattr(form, name).data for name in (
        "organisation_id", "anrede", "academic_title", "office_title", "first_name", "last_name", "function",
        "email", "phone", "notes", "active")}


@bp.route("/kontakte/neu", methods=["GET", "POST"])
@requires_role("sachbearbeitung")  # a form page: reading it is for those who may send it
def contact_new():
    form = _contact_form(None)
    duplicate = None
    if form.validate_on_submit():
        duplicate = _likely_duplicate(form)
        if duplicate is not None and request.form.get("dublette_ok") != "1":
            form.form_errors.append(f"Wahrscheinlich gibt es diese Person schon: {duplicate.describe()}. "
                                    "Bitte prüfen Sie den vorhandenen Eintrag oder bestätigen Sie, dass es eine andere Person ist.")
            return render_template("recipients/contact_form.html", form=form, contact=None, duplicate=duplicate), 422
        with transaction(form) as done:
            contact = services.save_contact(None, _contact_data(form))
        if done.ok:
            flash("Die Ansprechperson ist angelegt.", "success")
            return redirect(url_for("recipients.contact", contact_id=contact.id))
    return render_template("recipients/contact_form.html", form=form, contact=None, duplicate=duplicate), 422 if form.errors or form.form_errors else 200


def _likely_duplicate(form: ContactForm):
    organisation_id = form.organisation_id.data
    try:
        email = services.normalise_email(form.email.data or "")
    except ValidationError:
        return None  # the save reports the address itself
    return duplicates.find_duplicate(email=email, first_name=form.first_name.data or "", last_name=form.last_name.data or "",
                                     organisation_id=int(organisation_id) if organisation_id and organisation_id.isdigit() else None)


@bp.get("/kontakte/<int:contact_id>")
def contact(contact_id: int):
    item = services.get_contact(contact_id)
    memberships = services.verteiler_of(item)
    return render_template(
        "recipients/contact.html", contact=item, lines=address_lines(item), salutation=salutation(item),
        role=role_wording(item), memberships=memberships, form=ConfirmForm(),
        history=services.contact_history(item),
    )


@bp.route("/kontakte/<int:contact_id>/bearbeiten", methods=["GET", "POST"])
@requires_role("sachbearbeitung")  # a form page: reading it is for those who may send it
def contact_edit(contact_id: int):
    item = services.get_contact(contact_id)
    if item.anonymised_at is not None:
        flash("Eine anonymisierte Ansprechperson kann nicht bearbeitet werden.", "warning")
        return redirect(url_for("recipients.contact", contact_id=item.id))
    form = _contact_form(item)
    if form.validate_on_submit():
        with transaction(form) as done:
            services.save_contact(item, _contact_data(form))
        if done.ok:
            flash("Die Änderungen sind gespeichert.", "success")
            return redirect(url_for("recipients.contact", contact_id=item.id))
    return render_template("recipients/contact_form.html", form=form, contact=item), 422 if form.errors or form.form_errors else 200


@bp.post("/kontakte/<int:contact_id>/aktiv")
def contact_active(contact_id: int):
    item = services.get_contact(contact_id)
    form = ConfirmForm()
    if form.validate_on_submit():
        active = request.form.get("active") == "1"
        with transaction() as done:
            services.set_contact_active(item, active)
        if done.ok:
            flash("Die Ansprechperson ist wieder aktiv." if active else "Die Ansprechperson ist deaktiviert und erhält keine Post mehr.", "success")
    return redirect(url_for("recipients.contact", contact_id=item.id))


@bp.post("/kontakte/<int:contact_id>/auskunft")
def contact_data_export(contact_id: int):
    item = services.get_contact(contact_id)
    form = ConfirmForm()
    if not form.validate_on_submit():
        abort(400)
    with transaction():
        data = services.contact_data_export(item)  # audited
    body = json.dumps(data, ensure_ascii=False, indent=2, default=str).encode("utf-8")
    return _download(body, f"auskunft-ansprechperson-{item.id}.json", "application/json; charset=utf-8")


@bp.route("/kontakte/<int:contact_id>/loeschen", methods=["GET", "POST"])
@requires_role("sachbearbeitung")  # a form page: reading it is for those who may send it
def contact_delete(contact_id: int):
    """Confirm page (GET) for anonymising or deleting; the POST does it."""
    item = services.get_contact(contact_id)
    form = ConfirmForm()
    if request.method == "POST" and form.validate_on_submit():
        action = request.form.get("action")
        if action == "loeschen" and not current_user.has_role("admin"):
            abort(403)
        if action not in ("anonymisieren", "loeschen"):
            abort(400)
        with transaction() as done:
            if action == "anonymisieren":
                services.anonymise_contact(item)
                message = "Die Ansprechperson ist anonymisiert. Zählungen früherer Aussendungen bleiben erhalten."
                target = url_for("recipients.contact", contact_id=item.id)
            else:
                services.delete_contact(item)
                message = "Die Ansprechperson ist gelöscht."
                target = url_for("recipients.contacts")
        if not done.ok:
            return redirect(url_for("recipients.contact", contact_id=item.id))
        flash(message, "success")
        return redirect(target)
    return render_template("recipients/contact_delete.html", contact=item, form=form)


# --- Organisations ----------------------------------------------------------------------------------

@bp.get("/kommunen")
def organisations():
    return render_template("recipients/organisations.html", rows=services.organisations_with_counts())


@bp.route("/kommunen/neu", methods=["GET", "POST"])
@requires_role("sachbearbeitung")  # a form page: reading it is for those who may send it
def organisation_new():
    return _organisation_form(None)


@bp.route("/kommunen/<int:organisation_id>", methods=["GET", "POST"])
def organisation_edit(organisation_id: int):
    organisation = get_or_404(Organisation, organisation_id, "Kommune")
    return _organisation_form(organisation)


def _organisation_form(organisation: Organisation | None):
    form = OrganisationForm(obj=organisation)
    if form.validate_on_submit():
        with transaction(form) as done:
            saved = services.save_organisation(organisation, {name: getattr(form, name).data for name in (
                "name", "kind", "regierungsbezirk", "ki_name", "authority", "street", "postcode", "town")})
        if done.ok:
            flash("Die Kommune ist gespeichert.", "success")
            return redirect(url_for("recipients.contacts", organisation_id=saved.id, active="alle"))
    status = 422 if form.errors or form.form_errors else 200
    return render_template("recipients/organisation_form.html", form=form, organisation=organisation), status


# --- Verteiler --------------------------------------------------------------------------------------

@bp.get("/listen")
def lists():
    items = [(v, services.count_recipients(v), services.describe_filter(v.filter)) for v in services.all_verteiler()]
    return render_template("recipients/lists.html", items=items)


@bp.get("/listen/<int:verteiler_id>")
def list_detail(verteiler_id: int):
    verteiler = services.get_verteiler(verteiler_id)
    recipients = services.resolve_recipients(verteiler_id=verteiler.id)
    return render_template(
        "recipients/list_detail.html", verteiler=verteiler, recipients=recipients,
        description=services.describe_filter(verteiler.filter), form=ConfirmForm(),
    )


@bp.route("/listen/neu", methods=["GET", "POST"])
@requires_role("sachbearbeitung")  # a form page: reading it is for those who may send it
def list_new():
    return _verteiler_form(None)


@bp.route("/listen/<int:verteiler_id>/bearbeiten", methods=["GET", "POST"])
@requires_role("sachbearbeitung")  # a form page: reading it is for those who may send it
def list_edit(verteiler_id: int):
    return _verteiler_form(services.get_verteiler(verteiler_id))


PICK_SHOWN = 50  # search results shown as checkboxes; "alle Ergebnisse" takes every match


def _verteiler_form(verteiler):
    """Members are picked with checkboxes: a search (sent with the form, no script needed) lists matching
    active contacts; "alle Ergebnisse" adds every match. Searching re-shows the form, saving saves."""
    form = VerteilerForm(obj=verteiler)
    action = request.form.get("action", "speichern") if request.method == "POST" else ""
    search = (request.values.get("mitglieder_suche") or "").strip()[:200]
    if request.method == "GET":
        selected = [member.id for member in verteiler.members] if verteiler is not None else []
        if verteiler is not None:
            saved = verteiler.filter
            form.use_filter.data = saved is not None
            form.kind.data = services.as_list((saved or {}).get("kind"))
            form.regierungsbezirk.data = services.as_list((saved or {}).get("regierungsbezirk"))
            form.q.data = (saved or {}).get("q", "")
    else:
        selected = [int(value) for value in request.form.getlist("member_ids") if value.isdigit()]
    matches = picking.candidates(search) if search else None
    if action == "alle" and matches is not None:
        selected += [contact.id for contact in matches]
    selected = list(dict.fromkeys(selected))
    if action == "speichern" and form.validate_on_submit():
        with transaction(form) as done:
            member_ids = selected + services.member_ids_from_emails(request.form.get("members", ""))  # typed addresses: scripts
            filters = None
            if form.use_filter.data:
                filters = {"kind": form.kind.data, "regierungsbezirk": form.regierungsbezirk.data, "q": form.q.data}
            saved = services.save_verteiler(verteiler, name=form.name.data, description=form.description.data,
                                            filters=filters, member_ids=member_ids)
        if done.ok:
            flash("Der Verteiler ist gespeichert.", "success")
            return redirect(url_for("recipients.list_detail", verteiler_id=saved.id))
    status = 422 if form.errors or form.form_errors else 200
    chosen = picking.by_ids(selected)
    results = [contact for contact in (matches or []) if contact.id not in set(selected)]
    return render_template("recipients/list_form.html", form=form, verteiler=verteiler, selected=chosen, search=search,
                           results=results[:PICK_SHOWN], found=len(matches) if matches is not None else None,
                           more=max(len(results) - PICK_SHOWN, 0)), status


@bp.route("/listen/<int:verteiler_id>/loeschen", methods=["GET", "POST"])
@requires_role("sachbearbeitung")  # a form page: reading it is for those who may send it
def list_delete(verteiler_id: int):
    """Confirm page (GET, changes nothing); the POST deletes only with the page's explicit confirmation."""
    verteiler = services.get_verteiler(verteiler_id)
    form = ConfirmForm()
    if request.method == "GET":
        return render_template("recipients/list_delete.html", verteiler=verteiler, form=form,
                               recipients=services.count_recipients(verteiler))
    if not form.validate_on_submit():
        abort(400)
    if request.form.get("confirm") != "ja":
        # e.g. an old one-click form: ask first instead of deleting
        return redirect(url_for("recipients.list_delete", verteiler_id=verteiler.id), 303)
    with transaction():
        services.delete_verteiler(verteiler)
    flash("Der Verteiler ist gelöscht. Die Ansprechpersonen bleiben erhalten.", "success")
    return redirect(url_for("recipients.lists"))


# --- Import -----------------------------------------------------------------------------------------

@bp.route("/import", methods=["GET", "POST"])
@requires_role("sachbearbeitung")  # a form page: reading it is for those who may send it
def import_upload():
    form = ImportUploadForm()
    if form.validate_on_submit():
        upload = form.file.data
        data = upload.read() if upload else b""
        with transaction(form) as done:
            if not upload or not upload.filename:
                raise ValidationError("Bitte eine Datei auswählen.", field="file")
            token, _ = uploads.store_upload(data, upload.filename, current_user.id, current_app.config["MAX_CONTENT_LENGTH"])
        if done.ok:
            return redirect(url_for("recipients.import_preview", token=token))
    status = 422 if form.errors or form.form_errors else 200
    return render_template("recipients/import_upload.html", form=form, fields=FIELDS), status


def _mapping_from(args) -> dict[str, str]:
    """Choices of the mapping step: map-<n>=<field|-|> with header-<n>=<header text>."""
    mapping = {}
    for key, header in args.items():
        if key.startswith("header-"):
            choice = args.get("map-" + key[7:], EXTRA)
            mapping[header] = choice if choice in FIELDS or choice == IGNORE else EXTRA
    return mapping


@bp.get("/import/<token>")
def import_preview(token: str):
    upload = uploads.load_upload(token, current_user.id)
    mapping = _mapping_from(request.args)
    try:
        result = preview_import(upload.data, upload.filename, mapping)
    except ImportFileError as error:
        flash(str(error), "error")
        return redirect(url_for("recipients.import_upload"))
    return render_template("recipients/import_preview.html", upload=upload, result=result, mapping=mapping,
                           fields=FIELDS, form=ImportApplyForm(), discard_form=ConfirmForm(), extra=EXTRA, ignore=IGNORE)


@bp.post("/import/<token>")
def import_apply(token: str):
    upload = uploads.load_upload(token, current_user.id)
    form = ImportApplyForm()
    if not form.validate_on_submit():
        flash("Das Formular ist unvollständig. Bitte versuchen Sie es erneut.", "error")
        return redirect(url_for("recipients.import_preview", token=token))
    if request.form.get("action") == "verwerfen":
        with transaction():
            uploads.discard_upload(upload)
        flash("Der Import ist verworfen; nichts wurde gespeichert.", "success")
        return redirect(url_for("recipients.contacts"))
    try:
        with transaction() as done:
            confirmed = [int(value) for value in request.form.getlist("dublette") if value.isdigit()]
            result = uploads.apply_upload(upload, _mapping_from(request.form), form.list_name.data or "", confirmed)
    except IntegrityError:
        # Imports wait for each other; a Kommune or person saved by a form at the same moment can still collide.
        flash(CONCURRENT_CHANGE, "error")
        return redirect(url_for("recipients.import_preview", token=token))
    if not done.ok:
        return redirect(url_for("recipients.import_preview", token=token))
    flash(f"Import abgeschlossen: {result.summary()}.", "success" if not result.invalid else "warning")
    return redirect(url_for("recipients.contacts"))

