"""states: one language for codes (German), CHECK constraints on every state column

Events, invitations, answer channels and calendar replies had English codes (``published``,
``accepted``, ``calendar``, ``applied``); they become German like the outbox's (``veroeffentlicht``,
``zugesagt``, ``kalender``, ``uebernommen``). Converted as well: the audit log's action keys
(``outbox.mark-sent`` → ``nachricht.als-gesendet-markiert``, ``antwort.accepted`` →
``antwort.zugesagt`` …) and the codes inside it (the answer channel, the import counts), and the
facts stored with event mails (the answer a mail told, the answers a reminder was meant for). An
invitation not answered yet has no channel (NULL) instead of an empty string.

Then every state column gets a CHECK constraint, so the database itself refuses an unknown code.
PostgreSQL adds them in place. SQLite can add a constraint only by rebuilding the table; env.py runs
migrations with foreign keys off (otherwise dropping the old table would delete every row that
references it by ON DELETE CASCADE), and this revision refuses to rebuild if they are on.

The code lists are written out here, not imported from the models: a migration must keep meaning
what it meant when later versions change the enums.

Revision ID: a3f5c8e1d704
Revises: 8e3f2a6c4b17
Create Date: 2026-12-02 09:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'a3f5c8e1d704'
down_revision = '8e3f2a6c4b17'
branch_labels = None
depends_on = None

EVENT_STATES = {"draft": "entwurf", "published": "veroeffentlicht", "cancelled": "abgesagt"}
INVITATION_STATES = {"open": "offen", "accepted": "zugesagt", "declined": "abgesagt", "tentative": "vorlaeufig",
                     "waiting": "warteliste"}
CHANNELS = {"link": "link", "calendar": "kalender", "phone": "telefon", "letter": "brief", "staff": "sachbearbeitung"}
REPLY_STATUSES = {"applied": "uebernommen", "stale": "veraltet", "ignored": "ignoriert", "unmatched": "unzugeordnet",
                  "assigned": "zugeordnet", "late": "verspaetet", "dismissed": "verworfen"}
IMPORT_COUNTS = {"new": "neu", "changed": "geaendert", "unchanged": "unveraendert", "invalid": "ungueltig"}
AUDIT_ACTIONS = {
    "outbox.start": "aussendung.freigegeben",
    "outbox.pause": "aussendung.pausiert",
    "outbox.resume": "aussendung.fortgesetzt",
    "outbox.cancel": "aussendung.abgebrochen",
    "outbox.retry-failed": "aussendung.fehlgeschlagene-erneut",
    "outbox.unklar-resend": "aussendung.unklare-erneut",
    "outbox.unklar-mark-sent": "aussendung.unklare-als-gesendet",
    "outbox.testversand": "aussendung.testversand",
    "outbox.rundschreiben": "aussendung.rundschreiben",
    "outbox.resend": "nachricht.erneut-gesendet",
    "outbox.mark-sent": "nachricht.als-gesendet-markiert",
    **{f"antwort.{old}": f"antwort.{new}" for old, new in INVITATION_STATES.items()},
    # Written as kalenderantwort.<status> for these four; unmatched, assigned and dismissed replies were
    # already logged as kalenderantwort.unzugeordnet / .zugeordnet / .verworfen.
    **{f"kalenderantwort.{old}": f"kalenderantwort.{REPLY_STATUSES[old]}" for old in ("applied", "stale", "ignored", "late")},
}

# (table, column, constraint name, allowed codes)
CONSTRAINTS = [
    ("users", "role", "ck_users_role", ("lesen", "sachbearbeitung", "admin")),
    ("outbox_mailings", "state", "ck_outbox_mailings_mailing_state", ("entwurf", "aktiv", "pausiert", "abgebrochen")),
    ("outbox_mailings", "kind", "ck_outbox_mailings_mailing_kind",
     ("rundschreiben", "einladung", "aktualisierung", "absage", "erinnerung", "bestaetigung", "nachruecker",
      "testversand", "allgemein")),
    ("outbox_messages", "state", "ck_outbox_messages_message_state",
     ("wartend", "in_arbeit", "gesendet", "fehlgeschlagen", "unklar", "abgebrochen", "zurueckgezogen", "uebersprungen")),
    ("events", "state", "ck_events_event_state", tuple(EVENT_STATES.values())),
    ("invitations", "state", "ck_invitations_invitation_state", tuple(INVITATION_STATES.values())),
    ("invitations", "channel", "ck_invitations_channel", tuple(CHANNELS.values())),
    ("calendar_replies", "status", "ck_calendar_replies_reply_status", tuple(REPLY_STATUSES.values())),
]


def _condition(column: str, codes) -> str:
    return f"{column} IN ({', '.join(repr(code) for code in codes)})"


def _recode(table: str, column: str, mapping: dict) -> None:
    for old, new in mapping.items():
        if old != new:
            op.execute(sa.text(f"UPDATE {table} SET {column} = :new WHERE {column} = :old").bindparams(old=old, new=new))


def _recode_json(connection, table: str, column: str, convert) -> None:
    """Rewrites the JSON of each row ``convert`` changes (``convert`` returns None for no change)."""
    rows = sa.table(table, sa.column("id"), sa.column(column, sa.JSON()))
    for row_id, value in connection.execute(sa.select(rows.c.id, rows.c[column]).where(rows.c[column].is_not(None))).all():
        changed = convert(value)
        if changed is not None:
            connection.execute(rows.update().where(rows.c.id == row_id).values({column: changed}))


def _facts(mapping: dict):
    def convert(facts):
        if not isinstance(facts, dict):
            return None
        new = dict(facts)
        if isinstance(new.get("state"), str):
            new["state"] = mapping.get(new["state"], new["state"])
        if isinstance(new.get("audience"), list):
            new["audience"] = [mapping.get(code, code) for code in new["audience"]]
        return new if new != facts else None
    return convert


def _convert(connection, *, forward: bool) -> None:
    def way(mapping):
        return mapping if forward else {new: old for old, new in mapping.items()}

    _recode("events", "state", way(EVENT_STATES))
    _recode("invitations", "state", way(INVITATION_STATES))
    _recode("invitations", "channel", way(CHANNELS))
    _recode("calendar_replies", "status", way(REPLY_STATUSES))
    actions = way(AUDIT_ACTIONS)
    _recode("audit_log", "action", actions)
    audit = sa.table("audit_log", sa.column("id"), sa.column("action"), sa.column("details", sa.JSON()))
    answer_actions = [f"antwort.{code}" for code in (INVITATION_STATES.values() if forward else INVITATION_STATES)]
    channels = way(CHANNELS)
    for row_id, details in connection.execute(
            sa.select(audit.c.id, audit.c.details).where(audit.c.action.in_(answer_actions))).all():
        if isinstance(details, dict) and isinstance(details.get("kanal"), str) and details["kanal"] in channels:
            connection.execute(audit.update().where(audit.c.id == row_id)
                               .values(details={**details, "kanal": channels[details["kanal"]]}))
    counts = way(IMPORT_COUNTS)
    for row_id, details in connection.execute(
            sa.select(audit.c.id, audit.c.details).where(audit.c.action == "kontakte.importiert")).all():
        if isinstance(details, dict) and any(key in counts for key in details):
            connection.execute(audit.update().where(audit.c.id == row_id)
                               .values(details={counts.get(key, key): value for key, value in details.items()}))
    _recode_json(connection, "outbox_messages", "facts", _facts(way(INVITATION_STATES)))


def _sqlite_foreign_keys_off(connection) -> None:
    if connection.exec_driver_sql("PRAGMA foreign_keys").scalar():
        raise RuntimeError("SQLite: Fremdschlüssel sind eingeschaltet; ein Tabellenumbau würde abhängige Zeilen "
                           "löschen. Bitte mit `flask --app app db upgrade` migrieren.")


def upgrade():
    connection = op.get_bind()
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        _sqlite_foreign_keys_off(connection)
    _convert(connection, forward=True)
    if sqlite:
        with op.batch_alter_table("invitations", recreate="always") as batch:
            batch.alter_column("channel", existing_type=sa.String(20), nullable=True)
    else:
        op.alter_column("invitations", "channel", existing_type=sa.String(20), nullable=True)
    op.execute("UPDATE invitations SET channel = NULL WHERE channel = ''")
    if sqlite:
        for table in dict.fromkeys(table for table, *_ in CONSTRAINTS):
            with op.batch_alter_table(table, recreate="always") as batch:
                for _, column, name, codes in (c for c in CONSTRAINTS if c[0] == table):
                    batch.create_check_constraint(op.f(name), _condition(column, codes))
    else:
        for table, column, name, codes in CONSTRAINTS:
            op.create_check_constraint(op.f(name), table, _condition(column, codes))


def downgrade():
    connection = op.get_bind()
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        _sqlite_foreign_keys_off(connection)
        for table in dict.fromkeys(table for table, *_ in CONSTRAINTS):
            # Batch mode rebuilds the table from its reflected columns; the CHECK constraints stay behind.
            with op.batch_alter_table(table, recreate="always") as batch:
                for _, _column, name, _codes in (c for c in CONSTRAINTS if c[0] == table):
                    batch.drop_constraint(op.f(name), type_="check")
    else:
        for table, _column, name, _codes in CONSTRAINTS:
            op.drop_constraint(op.f(name), table, type_="check")
    op.execute("UPDATE invitations SET channel = '' WHERE channel IS NULL")
    _convert(connection, forward=False)
    if sqlite:
        with op.batch_alter_table("invitations", recreate="always") as batch:
            batch.alter_column("channel", existing_type=sa.String(20), nullable=False)
    else:
        op.alter_column("invitations", "channel", existing_type=sa.String(20), nullable=False)
