"""Messages in doubt ("unklar"): they count towards the auto-pause, and a person decides for all of a
mailing at once (page with confirmation, or CLI), audited. Against a real aiosmtpd that hangs up
after taking each message's data, both backends."""
from __future__ import annotations

from collections import Counter

from flask import g
from sqlalchemy import select

from ki_post.auth.models import AuditEntry
from ki_post.auth.services import create_user
from ki_post.extensions import db
from ki_post.outbox.models import Mailing, OutboxMessage
from ki_post.outbox.services import create_mailing, enqueue, mailing_counts, start_mailing
from ki_post.outbox.worker import Worker
from tests.helpers import PASSWORD


def make_mailing(count: int) -> int:
    mailing = create_mailing("rundschreiben", "Rundschreiben 1/2017")
    for number in range(count):
        enqueue(mailing, to_email=f"person{number}@kreis.example", subject="Rundschreiben", text=f"Hallo {number}\n")
    start_mailing(mailing)
    db.session.commit()
    return mailing.id


def states(mailing_id: int) -> dict[str, int]:
    db.session.expire_all()
    return {k: v for k, v in mailing_counts(mailing_id).items() if v}


def drop_five(smtp_app, smtp) -> int:
    """20 messages; the server takes the data of each and hangs up before its reply."""
    smtp_app.config["MAIL_PAUSE_AFTER_FAILURES"] = 5
    smtp.handler.drop_after_data = True
    mailing_id = make_mailing(20)
    summary = Worker(smtp_app).run(once=True)
    assert summary.unklar == 5
    return mailing_id


def test_connection_dropped_after_data_pauses_the_mailing(smtp_app, smtp):
    mailing_id = drop_five(smtp_app, smtp)
    assert states(mailing_id) == {"unklar": 5, "wartend": 15}
    assert len(smtp.handler.received) == 5  # the server did take them: resending blindly would send twice
    mailing = db.session.get(Mailing, mailing_id)
    assert mailing.state == "pausiert"
    assert "5 Fehlern in Folge" in mailing.pause_reason
    assert "Verbindung während der Übergabe abgebrochen" in mailing.pause_reason
    assert "gesammelt erneut senden oder als gesendet markieren" in mailing.pause_reason


def staff(app):
    create_user("admin@ministerium.example", "Admin", "admin", PASSWORD)
    create_user("sb@ministerium.example", "Sachbearbeitung", "sachbearbeitung", PASSWORD)
    create_user("lesen@ministerium.example", "Lesen", "lesen", PASSWORD)
    db.session.commit()
    client = app.test_client()
    client.login("sb@ministerium.example")
    return client


def test_bulk_resend_from_the_mailing_page_with_confirmation(smtp_app, smtp):
    mailing_id = drop_five(smtp_app, smtp)
    client = staff(smtp_app)
    page = client.get(f"/postausgang/{mailing_id}").get_data(as_text=True)
    assert f"/postausgang/{mailing_id}/unklar/erneut-senden" in page
    confirm = client.get(f"/postausgang/{mailing_id}/unklar/erneut-senden")
    text = confirm.get_data(as_text=True)
    assert confirm.status_code == 200 and "5 unklare Nachrichten erneut senden?" in text
    assert all(f"person{n}@kreis.example" in text for n in range(5))
    assert "zweites Mal" in text and "pausiert" in text
    assert states(mailing_id) == {"unklar": 5, "wartend": 15}  # GET changes nothing

    # Without the confirmation nothing happens.
    refused = client.submit(f"/postausgang/{mailing_id}/unklar/erneut-senden", {"anzahl": "5"},
                            form_url=f"/postausgang/{mailing_id}/unklar/erneut-senden")
    assert refused.status_code == 302 and states(mailing_id) == {"unklar": 5, "wartend": 15}
    unseen = client.submit(f"/postausgang/{mailing_id}/unklar/erneut-senden", {"bestaetigt": "ja"},
                           form_url=f"/postausgang/{mailing_id}/unklar/erneut-senden")  # no count shown: no decision
    assert unseen.status_code == 302 and states(mailing_id) == {"unklar": 5, "wartend": 15}

    done = client.submit(f"/postausgang/{mailing_id}/unklar/erneut-senden", {"anzahl": "5", "bestaetigt": "ja"},
                         form_url=f"/postausgang/{mailing_id}/unklar/erneut-senden", follow_redirects=True)
    assert "5 unklare Nachrichten werden erneut gesendet." in done.get_data(as_text=True)
    assert states(mailing_id) == {"wartend": 20}
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "aussendung.unklare-erneut"))
    assert entry.object_id == mailing_id and entry.details["anzahl"] == 5 and entry.user_id is not None

    # Resumed against a healthy server: every message goes out; the five in doubt a second time, as decided.
    smtp.handler.drop_after_data = False
    client.submit(f"/postausgang/{mailing_id}/fortsetzen", form_url=f"/postausgang/{mailing_id}")
    Worker(smtp_app).run(once=True)
    assert states(mailing_id) == {"gesendet": 20}
    counts = Counter(smtp.recipients())
    assert all(counts[f"person{n}@kreis.example"] == 2 for n in range(5))
    assert all(counts[f"person{n}@kreis.example"] == 1 for n in range(5, 20))


def test_bulk_decision_refuses_when_more_became_unklar_meanwhile(smtp_app, smtp):
    mailing_id = drop_five(smtp_app, smtp)
    client = staff(smtp_app)
    url = f"/postausgang/{mailing_id}/unklar/als-gesendet"
    token = client.csrf_token(url)  # the page showed five
    late = db.session.scalar(select(OutboxMessage).where(OutboxMessage.state == "wartend").limit(1))
    late.state = "unklar"
    db.session.commit()
    answer = client.post(url, data={"csrf_token": token, "anzahl": "5", "bestaetigt": "ja"}, follow_redirects=True)
    assert "Inzwischen sind 6 statt 5 Nachrichten unklar" in answer.get_data(as_text=True)
    assert states(mailing_id) == {"unklar": 6, "wartend": 14}


def test_bulk_decision_needs_sachbearbeitung(smtp_app, smtp):
    mailing_id = drop_five(smtp_app, smtp)
    staff(smtp_app)
    g.pop("csrf_token", None)  # requests share the fixture's app context, and Flask-WTF keeps the token in g
    reader = smtp_app.test_client()
    reader.login("lesen@ministerium.example")
    assert reader.get(f"/postausgang/{mailing_id}/unklar/erneut-senden").status_code == 403
    token = reader.csrf_token(f"/postausgang/{mailing_id}")
    assert reader.post(f"/postausgang/{mailing_id}/unklar/erneut-senden",
                       data={"csrf_token": token, "anzahl": "5", "bestaetigt": "ja"}).status_code == 403
    assert f"/postausgang/{mailing_id}/unklar/" not in reader.get(f"/postausgang/{mailing_id}").get_data(as_text=True)
    assert states(mailing_id) == {"unklar": 5, "wartend": 15}


def test_bulk_mark_sent_from_the_cli_asks_and_audits(smtp_app, smtp):
    mailing_id = drop_five(smtp_app, smtp)
    runner = smtp_app.test_cli_runner()
    declined = runner.invoke(args=["outbox", "unklar", str(mailing_id), "--als-gesendet"], input="n\n")
    assert declined.exit_code != 0 and "Alle 5 unklaren Nachrichten der Aussendung" in declined.output
    assert states(mailing_id) == {"unklar": 5, "wartend": 15}

    result = runner.invoke(args=["outbox", "unklar", str(mailing_id), "--als-gesendet"], input="y\n")
    assert result.exit_code == 0, result.output
    assert f"5 unklare Nachrichten der Aussendung {mailing_id} als gesendet markiert." in result.output
    assert states(mailing_id) == {"gesendet": 5, "wartend": 15}
    marked = db.session.scalars(select(OutboxMessage).where(OutboxMessage.state == "gesendet")).all()
    assert all(m.server_reply.endswith("als gesendet markiert") and m.sent_at is not None for m in marked)
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "aussendung.unklare-als-gesendet"))
    assert entry.actor == "cli" and entry.details["anzahl"] == 5
    # Nothing left to decide; a second run says so.
    again = runner.invoke(args=["outbox", "unklar", str(mailing_id), "--erneut-senden", "--ja"])
    assert again.exit_code != 0 and "keine unklaren Nachrichten" in again.output
