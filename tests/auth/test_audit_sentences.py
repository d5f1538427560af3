"""The Protokoll reads as German sentences with links, never as codes ("antwort.zugesagt", "count=None",
"users #2"); every audit key the code writes has its sentence."""
from __future__ import annotations

import re
from pathlib import Path

from ki_post.auth import audit_text
from ki_post.auth.services import audit
from ki_post.events import services as events
from ki_post.events.models import InvitationState, ReplyStatus
from ki_post.extensions import db

ROOT = Path(__file__).resolve().parents[2] / "ki_post"
CALL = re.compile(r"\baudit\((.*)", re.S)
# What the f-string keys expand to, by the name inside the braces.
EXPANSIONS = {"new_state": InvitationState, "record.status": ReplyStatus}


def written_keys() -> set[str]:
    """Every key in an ``audit(`` call: literals, both arms of a conditional, f-strings expanded over
    their values (the outbox's control names are the literal names passed to _steer/_control)."""
    keys: set[str] = set()
    for path in ROOT.rglob("*.py"):
        source = path.read_text(encoding="utf-8")
        control_names = re.findall(r'(?:_steer\(.*?|_control\()"([a-z][a-z-]*)"\)?(?:,|$)', source, re.M)
        control_names += re.findall(r'"(unklar-[a-z-]+)"', source)
        for line in source.splitlines():
            if "audit(" not in line or line.lstrip().startswith("def "):
                continue
            call = line[line.index("audit(") + 6:]
            for fstring in re.findall(r'f"([^"]*\{[^"]*)"', call):
                prefix, name = re.match(r"([^{]*)\{([^}]+)\}", fstring).groups()
                if name == "name":
                    values = control_names
                else:
                    assert name in EXPANSIONS, f"{path.name}: {line.strip()} — Werte für {{{name}}} eintragen"
                    values = EXPANSIONS[name]
                keys.update(prefix + value for value in values)
            call = re.sub(r'f"[^"]*"', "", call)
            keys.update(re.findall(r'"([a-z]+(?:\.[a-z-]+)?)"', call.split(",")[0] + " ".join(re.findall(r'if .*? else "[^"]+"', call))))
            if call.startswith("audit_action"):
                keys.update(re.findall(r'"(outbox\.unklar-[a-z-]+)"', source))  # UNKLAR_DECISIONS
    return {key for key in keys if key != "ip"}


def test_every_key_the_code_writes_has_a_sentence():
    keys = written_keys()
    assert {"anmeldung", "veranstaltung.eingeladen", "antwort.abgesagt", "kalenderantwort.verspaetet", "aussendung.fehlgeschlagene-erneut",
            "aussendung.unklare-als-gesendet", "kontakt.geaendert", "verteiler.angelegt"} <= keys
    assert keys - set(audit_text.SENTENCES) == set()


def _log(client) -> str:
    html = client.get("/verwaltung/protokoll").get_data(as_text=True)
    body = html[html.index("<tbody>"):html.index("</tbody>")]
    return body


def test_the_protokoll_tells_what_happened_in_german_with_links(admin_client, demo):
    from ki_post.recipients.models import Contact, Verteiler

    start = "2030-03-06T11:00"
    event = events.create_event(events.EventData(title="Fachtag Integration", start=start, end="2030-03-06T13:00",
                                                 companions_allowed=2))
    events.publish_event(event)
    verteiler = db.session.query(Verteiler).first()
    events.invite(event, verteiler_id=verteiler.id)
    invitation = event.invitations[0]
    events.answer(invitation, "abgesagt", channel="link", notify=False)
    events.answer(event.invitations[1], "zugesagt", companions=2, channel="telefon", notify=False)
    contact = db.session.get(Contact, 1)
    audit("kontakt.geaendert", contact)
    from ki_post.outbox.services import create_mailing

    audit("aussendung.abgebrochen", create_mailing("rundschreiben", "Förderaufruf"), count=None)
    db.session.commit()

    body = _log(admin_client)
    text = " ".join(re.sub(r"<[^>]+>", "", body).split())
    assert f"{invitation.name} hat zur Veranstaltung „Fachtag Integration“ abgesagt (über den persönlichen Link)." in text
    assert f"{event.invitations[1].name} hat zur Veranstaltung „Fachtag Integration“ zugesagt mit 2 Begleitpersonen (per Telefon)." in text
    assert f"hat für die Veranstaltung „Fachtag Integration“ {len(event.invitations)} Einladungen vorbereitet." in text
    assert f"Die Kommandozeile hat die Ansprechperson „{contact.full_name}“ geändert." in text
    assert f'<a href="/veranstaltungen/{event.id}">„Fachtag Integration“</a>' in body
    assert f'<a href="/verteiler/kontakte/{contact.id}">' in body
    assert "Die Kommandozeile hat die Aussendung „Förderaufruf“ abgebrochen." in text
    # No codes, no Python values, no "table #id".
    assert not re.search(r"\b(?:antwort|veranstaltung|kontakt|outbox)\.[a-z-]+|None|count=|#\d|\b(?:users|events|contacts)\b", text)


def test_a_key_without_sentence_still_reads_german():
    """E.g. the German codes another branch introduces before this mapping learns them."""
    class Entry:
        id, action, object_type, object_id, actor, user = 1, "nachricht.als-gesendet-markiert", "outbox_messages", 7, "cli", None
        details = {"ip": "127.0.0.1"}

    names = {"outbox_messages": {7: audit_text.Named("an Erika Muster", "/postausgang/nachricht/7")}}
    assert audit_text.sentence(Entry, names) == (
        'Die Kommandozeile hat die Nachricht <a href="/postausgang/nachricht/7">„an Erika Muster“</a> als gesendet markiert.')
    Entry.action, Entry.object_id = "veranstaltung.veroeffentlicht", 99  # the object is gone
    assert str(audit_text.sentence(Entry, {})) == "Die Kommandozeile hat die Nachricht (gelöscht) veröffentlicht."


def test_names_are_escaped(admin_client, demo):
    event = events.create_event(events.EventData(title="<script>x</script>", start="2030-03-06T11:00", end="2030-03-06T13:00"))
    db.session.commit()
    body = _log(admin_client)
    assert "<script>" not in body and "&lt;script&gt;" in body
