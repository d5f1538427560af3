from __future__ import annotations

import io
import tempfile

from flask import Response, abort, current_app, flash, jsonify, redirect, render_template, request, send_file, url_for
from flask_login import current_user

from ..errors import NotFound, ValidationError
from ..extensions import db
from ..recipients import services as recipients
from ..recipients.models import Contact
from ..auth.access import requires_role
from ..transaction import transaction
from ..outbox.services import get_mailing
from .blueprint import bp
from . import erasure, jobs, pages, pdf, services
from .circulars import skipped_recipients
from .forms import ComposeForm, SenderForm, UploadForm
from .models import JobKind, JobState



@bp.route("/rundschreiben/")
def index():
    return render_template("letters/index.html", templates=services.list_templates(), runs=services.list_runs(10),
                           pending=services.pending_shipped_templates(),
                           pdf_available=pdf.pdf_available(current_app.config.get("SOFFICE_PATH")), install_hint=pdf.INSTALL_HINT)


@bp.route("/rundschreiben/vorlagen/neu", methods=["GET", "POST"])
@requires_role("sachbearbeitung")  # a form page: reading it is for those who may send it
def upload():
    form = UploadForm()
    if request.method == "GET" and request.args.get("name"):
        form.name.data = request.args["name"]
    if form.validate_on_submit():
        file = form.file.data
        data = file.read() if file else b""
        with transaction(form) as done:
            version, warnings = services.upload_template(
                form.name.data, data, filename=getattr(file, "filename", "") or "", description=form.description.data or "",
                user=current_user.email)
        if done.ok:
            flash(f"Die Vorlage „{version.template.name}“ wurde als Version {version.number} gespeichert.", "success")
            for warning in warnings:
                flash(warning, "warning")
            return redirect(url_for("letters.index"))
    existing = [template.name for template in services.list_templates()]
    return render_template("letters/upload.html", form=form, existing=existing)


@bp.route("/rundschreiben/vorlagen/<int:version_id>/datei")
def template_file(version_id: int):
    version = services.get_version(version_id)
    data = services.load_blob(version.blob_key)
    return send_file(io.BytesIO(data), mimetype=services.engine.DOCX_MIMETYPE, as_attachment=True,
                     download_name=f"{services.safe_filename(version.template.name)}_v{version.number}.docx")


@bp.route("/rundschreiben/platzhalter")
def placeholders():
    return render_template("letters/placeholders.html", placeholders=services.PLACEHOLDERS)


@bp.route("/rundschreiben/absender", methods=["GET", "POST"])
@requires_role("sachbearbeitung")  # a form page: reading it is for those who may send it
def sender():
    profile = services.sender_profile()
    form = SenderForm(obj=profile)
    if request.method == "GET":
        form.unterzeichnende.data = "\n".join(f"{p['name']}; {p.get('funktion', '')}" for p in profile.unterzeichnende)
    if form.validate_on_submit():
        with transaction(form) as done:
            services.update_sender_profile({name: getattr(form, name).data for name in (*services.SENDER_TEXT_FIELDS, "unterzeichnende")})
        if done.ok:
            flash("Die Absenderangaben wurden gespeichert.", "success")
            return redirect(url_for("letters.index"))
    return render_template("letters/sender.html", form=form)


def _compose_form() -> ComposeForm:
    form = ComposeForm()
    templates = services.list_templates()
    form.version_id.choices = [(f"v:{t.latest.id}", f"{t.name} (Version {t.latest.number})") for t in templates if t.latest]
    form.version_id.choices += [(f"shipped:{name}", f"{name} (mitgeliefert)") for name in services.pending_shipped_templates()]
    form.verteiler_id.choices = [("", "– kein Verteiler –")] + [(str(v.id), v.name) for v in recipients.all_verteiler()]
    form.contact_ids.choices = recipients.active_contact_choices()
    return form


def _parse_extra(text: str) -> dict[str, str]:
    extra = {}
    for number, line in enumerate((text or "").splitlines(), start=1):
        if not line.strip():
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise ValidationError(f"Zusatzfelder, Zeile {number}: bitte „name=Wert“ schreiben.", field="extra")
        extra[key.strip()] = value.strip()
    return extra


def _fields(form: ComposeForm) -> dict[str, str]:
    fields = {name: (getattr(form, name).data or "") for name in ("aktenzeichen", "betreff", "ansprechperson", "telefon", "telefax", "email")}
    fields["datum"] = form.datum.data.isoformat() if form.datum.data else ""
    return {**_parse_extra(form.extra.data), **fields}


def _recipients(form: ComposeForm) -> list[Contact]:
    filters = {k: v for k, v in (("kind", form.kind.data), ("regierungsbezirk", form.regierungsbezirk.data)) if v}
    raw_ids = [form.verteiler_id.data or "", *(form.contact_ids.data or [])]
    if not all(value.isdigit() for value in raw_ids if value):
        raise ValidationError("Ungültige Auswahl der Empfängerinnen und Empfänger.", field="verteiler_id")
    verteiler_id = int(form.verteiler_id.data) if form.verteiler_id.data else None
    ids = [int(value) for value in form.contact_ids.data or []]
    if verteiler_id is None and not ids and not filters:
        raise ValidationError("Bitte einen Verteiler, einen Filter oder einzelne Kontakte wählen.", field="verteiler_id")
    # Verteiler, filter and single contacts narrow each other down (resolve_recipients' rule).
    return recipients.resolve_recipients(verteiler_id=verteiler_id, filters=filters or None, contact_ids=ids)


@bp.route("/rundschreiben/erstellen", methods=["GET", "POST"])
def compose():
    return _compose(preview_only=False)


@bp.route("/rundschreiben/vorschau", methods=["POST"])
@requires_role("lesen")  # read-only accounts may look at a letter; nothing is produced, sent or stored
def preview():
    return _compose(preview_only=True)


def _compose(preview_only: bool):
    form = _compose_form()
    preview_text, index, total, shown = None, 0, 0, {}
    check: services.RunCheck | None = None
    problems: list[services.RecipientProblem] = []
    if request.method == "GET":
        defaults = services.default_fields()
        for name in ("aktenzeichen", "ansprechperson", "telefon", "telefax", "email"):
            getattr(form, name).data = defaults[name]
        from datetime import date

        form.datum.data = date.today()
        selected = request.args.get("verteiler_id")
        if selected:
            form.verteiler_id.data = selected
    elif form.validate_on_submit():
        action = request.form.get("action", "preview")
        if preview_only and action != "preview":
            abort(403)
        with transaction(form, flash_not_found=True):  # an unknown version is shown at the form
            version = services.version_from_choice(form.version_id.data)
            fields = _fields(form)
            contacts = _recipients(form)
            if action in ("produce", "mailing"):
                services.require_complete(version, fields, confirm_empty=form.leere_bestaetigt.data)
            if action == "produce":
                if not form.ohne_problemfaelle.data:
                    problems = services.recipient_problems(version, contacts, fields)
                    if problems:
                        raise ValidationError(
                            f"Für {len(problems)} von {len(contacts)} Empfängerinnen und Empfängern lässt sich kein Brief "
                            "erstellen (Gründe unten). Die übrigen Briefe erstellen: „Briefe ohne die genannten "
                            "Empfängerinnen und Empfänger erstellen“ ankreuzen und erneut „Briefe erstellen“ wählen.",
                            field="ohne_problemfaelle")
                if form.output.data not in services.OUTPUTS:
                    raise ValidationError("Unbekannte Ausgabeart.", field="output")
                # The letters are made in the background; the job page shows the progress and the file.
                job, _ = jobs.submit(JobKind.PRODUCE, version, contacts, fields, {"output": form.output.data},
                                     user=current_user.email, user_id=current_user.id)
                return redirect(url_for("letters.job_page", job_id=job.id))
            if action == "mailing":
                if form.attachment_format.data not in ("docx", "pdf"):
                    raise ValidationError("Format muss docx oder pdf sein.", field="attachment_format")
                job, _ = jobs.submit(JobKind.MAILING, version, contacts, fields, {"format": form.attachment_format.data},
                                     user=current_user.email, user_id=current_user.id)
                return redirect(url_for("letters.job_page", job_id=job.id))
            check = services.check_run(version, fields)
            index, not_found = _chosen_index(contacts)
            index, document = services.preview_document(version, contacts, fields, index)
            preview_text = services.engine.document_text(document)
            total = len(contacts)  # committed: a shipped template used for the first time is now registered
            if preview_only:
                db.session.rollback()  # …except for a look only: the preview route changes nothing
        if preview_text is not None:  # outside the transaction: LibreOffice may take a few seconds
            shown = _page_view(document, contacts[index])
            shown["not_found"] = not_found
    return render_template("letters/compose.html", form=form, preview_text=preview_text, index=index, total=total,
                           check=check, problems=problems, shown=shown,
                           pdf_available=pdf.pdf_available(current_app.config.get("SOFFICE_PATH")), install_hint=pdf.INSTALL_HINT)


def _number(name: str) -> int | None:
    value = request.form.get(name, "")
    return int(value) if value.isdigit() else None


def _chosen_index(contacts: list[Contact]) -> tuple[int, str]:
    """Which recipient to preview: a previous/next button, else the search box, else the one shown."""
    button, current = _number("index"), _number("aktuell") or 0
    if button is not None:
        return button, ""
    term = (request.form.get("suche") or "").strip()[:100]
    if term and _number("seite") is None:  # a page button keeps the recipient; the search box may still hold text
        found = services.find_recipient(contacts, term)
        return (current, term) if found is None else (found, "")
    return current, ""


def _page_view(document: bytes, contact: Contact) -> dict:
    """The preview as page images, or the reason why only the text is shown."""
    organisation = contact.organisation.name if contact.organisation else ""
    shown = {"recipient": contact.full_name + (f", {organisation}" if organisation else "")}
    try:
        paged = pages.prepare(document)
    except pages.PreviewUnavailable as error:
        return {**shown, "hint": str(error)}
    page = max(1, min(_number("seite") or 1, paged.pages))
    return {**shown, "key": paged.key, "pages": paged.pages, "page": page}


@bp.route("/rundschreiben/vorschau/<key>/seite-<int:page>.png")
@requires_role("lesen")  # renders and caches a picture, changes nothing
def preview_page(key: str, page: int):
    try:
        data = pages.page_image(key, page)
    except pages.PreviewUnavailable as error:
        return Response(str(error), status=503, mimetype="text/plain")
    return send_file(io.BytesIO(data), mimetype="image/png", download_name=f"vorschau-seite-{page}.png")


@bp.route("/rundschreiben/auftraege/<int:job_id>")
@requires_role("sachbearbeitung")  # jobs are started by those who may produce letters
def job_page(job_id: int):
    job = jobs.get_job(job_id)
    mailing, skipped = None, []
    if job.mailing_id is not None and job.state == JobState.FERTIG:
        mailing = get_mailing(job.mailing_id)
        skipped = skipped_recipients(mailing)
    return render_template("letters/job.html", job=job, status=jobs.status(job), mailing=mailing, skipped=skipped,
                           may_download=_may_download(job))


@bp.route("/rundschreiben/auftraege/<int:job_id>/stand")
@requires_role("sachbearbeitung")
def job_status(job_id: int):
    return jsonify(jobs.status(jobs.get_job(job_id)))


@bp.route("/rundschreiben/auftraege/<int:job_id>/datei")
@requires_role("sachbearbeitung")
def job_file(job_id: int):
    """The file of a finished job, as stored when it was made: downloading again makes nothing new."""
    job = jobs.get_job(job_id)
    if job.state != JobState.FERTIG or not job.result_blob:
        raise NotFound("Für diesen Auftrag gibt es (noch) keine Datei.")
    if not _may_download(job):
        abort(403)  # an addressee was erased since: single letters stay in the archive for the administration
    return send_file(io.BytesIO(services.load_blob(job.result_blob)), mimetype=job.result_mimetype, as_attachment=True,
                     download_name=job.result_filename)


def _may_download(job) -> bool:
    return job.run is None or erasure.restricted_count(job.run.letters) == 0


@bp.route("/rundschreiben/archiv/")
def archive():
    return render_template("letters/archive.html", runs=services.list_runs(100))


@bp.route("/rundschreiben/archiv/<int:run_id>")
def run_detail(run_id: int):
    run = services.get_run(run_id)
    return render_template("letters/run.html", run=run, may_open=erasure.may_open,
                           withheld=erasure.restricted_count(run.letters))


@bp.route("/rundschreiben/archiv/brief/<int:letter_id>")
def archived_letter(letter_id: int):
    letter, data = services.archived_letter(letter_id)
    if not erasure.may_open(letter):
        abort(403)  # the addressee was erased: the records copy is for the administration only
    return send_file(io.BytesIO(data), mimetype=services.engine.DOCX_MIMETYPE, as_attachment=True, download_name=letter.filename)


@bp.route("/rundschreiben/archiv/<int:run_id>/zip")
def run_zip(run_id: int):
    run = services.get_run(run_id)
    spool = tempfile.SpooledTemporaryFile(max_size=64 * 1024 * 1024)
    letters = [letter for letter in run.letters if erasure.may_open(letter)]
    services.engine.write_letters_zip(spool, ((letter.filename, services.load_blob(letter.sha256)) for letter in letters))
    spool.seek(0)
    return send_file(spool, mimetype="application/zip", as_attachment=True, download_name=f"Archiv_Vorgang_{run.id}.zip")

