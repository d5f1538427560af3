"""Reading and saving Verwaltung → Einstellungen, and the connection checks.

The sender identity is the one sender profile of the letters (``letters.services``), shared with
Rundschreiben → Absenderangaben, mails and the answer page; everything else is a setting stored by
``ki_post.settings`` (passwords encrypted). Settings fixed by configuration are shown, never changed.
"""
from __future__ import annotations

import re
from email.utils import parseaddr
from typing import Any

from email_validator import EmailNotValidError, validate_email
from flask import current_app

from .. import settings
from ..auth.services import audit
from ..errors import ValidationError
from ..events.imap import ImapSettings, check_imap
from ..letters import services as letters
from ..outbox.transport import SmtpSettings, check_smtp

IDENTITY_FIELDS = ("ansprechperson", "funktion", "organisationseinheit", "ministerium", "dienstgebaeude", "telefon", "email")
# Form field → the settings it edits; a field is fixed when any of them is set in configuration.
FIELD_KEYS: dict[str, tuple[str, ...]] = {
    "sender_name": ("MAIL_DEFAULT_SENDER",), "sender_address": ("MAIL_DEFAULT_SENDER",), "reply_to": ("MAIL_REPLY_TO",),
    "rate_per_minute": ("MAIL_RATE_PER_MINUTE",), "daily_cap": ("MAIL_DAILY_CAP",),
    "mail_server": ("MAIL_SERVER",), "mail_port": ("MAIL_PORT",), "mail_security": ("MAIL_USE_TLS", "MAIL_USE_SSL"),
    "mail_username": ("MAIL_USERNAME",), "mail_password": ("MAIL_PASSWORD",), "mail_password_clear": ("MAIL_PASSWORD",),
    "imap_server": ("IMAP_SERVER",), "imap_port": ("IMAP_PORT",), "imap_security": ("IMAP_USE_SSL",),
    "imap_username": ("IMAP_USERNAME",), "imap_password": ("IMAP_PASSWORD",), "imap_password_clear": ("IMAP_PASSWORD",),
    "imap_folder": ("IMAP_FOLDER",),
}
_HOST = re.compile(r"^[A-Za-z0-9.\-:\[\]]+$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def fixed_fields() -> dict[str, list[str]]:
    """Form fields fixed by configuration, with the setting names that fix them."""
    fixed = settings.fixed()
    return {name: [key for key in keys if key in fixed] for name, keys in FIELD_KEYS.items() if any(k in fixed for k in keys)}


def current_values() -> dict[str, Any]:
    """What the form shows: the sender profile and the effective settings (passwords never)."""
    config = current_app.config
    profile = letters.sender_profile()
    name, address = parseaddr(config["MAIL_DEFAULT_SENDER"]) if not settings.sender_missing() else ("", "")
    return {
        **{field: getattr(profile, field) for field in IDENTITY_FIELDS},
        "sender_name": name, "sender_address": address, "reply_to": config.get("MAIL_REPLY_TO") or "",
        "rate_per_minute": config["MAIL_RATE_PER_MINUTE"], "daily_cap": config["MAIL_DAILY_CAP"],
        "mail_server": config["MAIL_SERVER"], "mail_port": config["MAIL_PORT"],
        "mail_security": "ssl" if config["MAIL_USE_SSL"] else "starttls" if config["MAIL_USE_TLS"] else "none",
        "mail_username": config.get("MAIL_USERNAME") or "",
        "imap_server": config.get("IMAP_SERVER") or "", "imap_port": config["IMAP_PORT"],
        "imap_security": "ssl" if config["IMAP_USE_SSL"] else "none",
        "imap_username": config.get("IMAP_USERNAME") or "", "imap_folder": config.get("IMAP_FOLDER") or "INBOX",
    }


def password_state() -> dict[str, str]:
    """Per password: "config" (set in configuration), "stored", "unreadable" (stored with another key) or ""."""
    fixed, unreadable, config = settings.fixed(), settings.unreadable(), current_app.config
    state = {}
    for key in ("MAIL_PASSWORD", "IMAP_PASSWORD"):
        if key in fixed:
            state[key] = "config" if config.get(key) else ""
        elif key in unreadable:
            state[key] = "unreadable"
        else:
            state[key] = "stored" if key in settings.stored() else ""
    return state


def _text(data: dict[str, Any], name: str) -> str:
    value = str(data.get(name) or "").strip()
    if _CONTROL.search(value):
        raise ValidationError("Bitte keine Zeilenumbrüche oder Steuerzeichen eingeben.", field=name)
    return value


def _address(data: dict[str, Any], name: str) -> str:
    value = _text(data, name)
    if not value:
        return ""
    try:
        return validate_email(value, check_deliverability=False, allow_smtputf8=True).normalized
    except EmailNotValidError:
        raise ValidationError(f"„{value}“ ist keine gültige E-Mail-Adresse.", field=name) from None


def _host(data: dict[str, Any], name: str) -> str:
    value = _text(data, name)
    if value and not _HOST.match(value):
        raise ValidationError("Bitte nur den Namen oder die IP-Adresse des Servers angeben, ohne Leerzeichen.", field=name)
    return value


def _mailbox(name: str, address: str) -> str:
    """The mailbox "Name <address>" as written in configuration (Unicode, not RFC 2047: the mail builder encodes);
    quoted when the name holds characters with a meaning in an address."""
    if not name:
        return address
    if re.search(r'[()<>@,;:\\".\[\]]', name):
        name = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return f"{name} <{address}>"


def settings_from(data: dict[str, Any]) -> dict[str, Any]:
    """The settings a submitted form asks for (None: back to the configuration's value). Passwords only
    when one was typed or clearing was asked for; fixed settings are left out."""
    sender_name, sender_address = _text(data, "sender_name"), _address(data, "sender_address")
    if sender_name and not sender_address:
        raise ValidationError("Bitte auch die Absenderadresse angeben.", field="sender_address")
    values: dict[str, Any] = {
        "MAIL_DEFAULT_SENDER": _mailbox(sender_name, sender_address) if sender_address else None,
        "MAIL_REPLY_TO": _address(data, "reply_to"),
        "MAIL_RATE_PER_MINUTE": data.get("rate_per_minute"), "MAIL_DAILY_CAP": data.get("daily_cap"),
        "MAIL_SERVER": _host(data, "mail_server"), "MAIL_PORT": data.get("mail_port"),
        "MAIL_USE_TLS": data.get("mail_security") == "starttls", "MAIL_USE_SSL": data.get("mail_security") == "ssl",
        "MAIL_USERNAME": _text(data, "mail_username"),
        "IMAP_SERVER": _host(data, "imap_server"), "IMAP_PORT": data.get("imap_port"),
        "IMAP_USE_SSL": data.get("imap_security") != "none",
        "IMAP_USERNAME": _text(data, "imap_username"), "IMAP_FOLDER": _text(data, "imap_folder") or None,
    }
    if data.get("mail_security") not in ("starttls", "ssl", "none"):
        raise ValidationError("Bitte eine Verschlüsselung wählen.", field="mail_security")
    if data.get("imap_security") not in ("ssl", "none"):
        raise ValidationError("Bitte eine Verschlüsselung wählen.", field="imap_security")
    for prefix in ("mail", "imap"):
        key = f"{prefix.upper()}_PASSWORD"
        if data.get(f"{prefix}_password"):
            values[key] = str(data[f"{prefix}_password"])
        elif data.get(f"{prefix}_password_clear"):
            values[key] = None
    fixed = settings.fixed()
    return {key: value for key, value in values.items() if key not in fixed}


def save(data: dict[str, Any], user: str) -> list[str]:
    """Store the form (flush; the caller commits): the sender profile (audited by the letters) and the
    settings; the audit entry names the settings that changed, never a value."""
    letters.update_sender_profile({field: data.get(field) or "" for field in IDENTITY_FIELDS})
    changed = settings.store(settings_from(data), user=user)
    if changed:
        audit("einstellungen.geaendert", geaendert=", ".join(changed))
    return changed


def _entered(data: dict[str, Any], key: str, value: Any) -> Any:
    """The entered value of a setting, or the one in force when configuration fixes it."""
    return current_app.config[key] if key in settings.fixed() else value


def _password(data: dict[str, Any], prefix: str) -> str:
    key = f"{prefix.upper()}_PASSWORD"
    if key in settings.fixed():
        return current_app.config.get(key) or ""
    if data.get(f"{prefix}_password"):
        return str(data[f"{prefix}_password"])
    return "" if data.get(f"{prefix}_password_clear") else current_app.config.get(key) or ""


def check_smtp_connection(data: dict[str, Any]) -> tuple[bool, list[str]]:
    """Try the entered SMTP values (the saved password if none was typed); nothing is stored or sent."""
    server = _entered(data, "MAIL_SERVER", _host(data, "mail_server"))
    if not server:
        return False, ["Bitte einen SMTP-Server eintragen."]
    security = data.get("mail_security")
    config = current_app.config
    values = SmtpSettings(
        server=server, port=int(_entered(data, "MAIL_PORT", data.get("mail_port") or 587)),
        use_tls=bool(_entered(data, "MAIL_USE_TLS", security == "starttls")),
        use_ssl=bool(_entered(data, "MAIL_USE_SSL", security == "ssl")),
        username=_entered(data, "MAIL_USERNAME", _text(data, "mail_username")), password=_password(data, "mail"),
        timeout=float(config["MAIL_TIMEOUT"]), ca_file=config.get("MAIL_CA_FILE") or "")
    return check_smtp(values)


def check_imap_connection(data: dict[str, Any]) -> tuple[bool, list[str]]:
    """Try the entered IMAP values (the saved password if none was typed); nothing is read or marked."""
    server = _entered(data, "IMAP_SERVER", _host(data, "imap_server"))
    if not server:
        return False, ["Bitte einen IMAP-Server eintragen."]
    values = ImapSettings(
        server=server, port=int(_entered(data, "IMAP_PORT", data.get("imap_port") or 993)),
        use_ssl=bool(_entered(data, "IMAP_USE_SSL", data.get("imap_security") != "none")),
        username=_entered(data, "IMAP_USERNAME", _text(data, "imap_username")), password=_password(data, "imap"),
        folder=_entered(data, "IMAP_FOLDER", _text(data, "imap_folder") or "INBOX"),
        ca_file=current_app.config.get("IMAP_CA_FILE") or "")
    return check_imap(values)
