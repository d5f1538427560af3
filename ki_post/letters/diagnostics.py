"""German error messages for letter templates: which placeholder, which character, where in Word.

Jinja reports a line of the XML it compiled; a user needs the placeholder as written, the text
around it (to find it with Ctrl+F) and a place (Haupttext, Seite 2, Absatz 13; Tabelle 1, Zeile 2).
So a syntax error is traced on the document as the user sees it: each placeholder is checked on
its own, then the blocks ({% if %} … {% endif %}) are matched; only if both find nothing does the
message fall back to Jinja's own words.
"""
from __future__ import annotations

import re
import traceback
from collections.abc import Mapping
from typing import Any

from jinja2 import TemplateSyntaxError
from jinja2.sandbox import SandboxedEnvironment, SecurityError

from ..errors import ValidationError
from . import sandbox
from .wordml import (
    TagHit, canonical, find_tags, normalise_tag_text, read_paragraphs, split_prefix, surroundings,
)

HINT = "Bitte Klammern und Schreibweise prüfen – {{ … }} für Werte, {% … %} für Bedingungen und Wiederholungen."
_BLOCKS = {"if": "endif", "for": "endfor", "macro": "endmacro", "call": "endcall", "filter": "endfilter",
           "with": "endwith", "autoescape": "endautoescape", "set": "endset"}
_CLOSERS = {closer: opener for opener, closer in _BLOCKS.items()}
_NOT_FOR_LETTERS = {"include", "import", "from", "extends", "block", "endblock", "raw", "endraw", "trans", "endtrans"}
_QUOTES = "\"'„“”«»‟″‚‘’‹›‛′"
_OBJECT_TAGS = {"r": "formatierten Text (RichText)", "p": "einen formatierten Absatz oder ein Unterdokument",
                "tr": "eine Tabellenzeile als Objekt", "tc": "eine Tabellenzelle als Objekt"}


def _char(char: str) -> str:
    return f"„{char}“ (Unicode U+{ord(char):04X})"


def _technical(message: str) -> str:
    return f"(Technische Meldung: {message})"


def _reason(exc: TemplateSyntaxError, source: str) -> str:
    message = exc.message or ""
    match = re.match(r"unexpected char (['\"])(.*)\1 at (\d+)", message)
    if match:
        position = int(match.group(3))
        char = source[position] if position < len(source) else match.group(2)
        if char in _QUOTES:
            return (f"das Anführungszeichen {_char(char)} wird nicht passend geschlossen – "
                    "Texte in Platzhaltern beginnen und enden mit demselben Anführungszeichen")
        return f"das Zeichen {_char(char)} darf hier nicht stehen"
    match = re.match(r"No (filter|test) named '([^']*)'", message)
    if match:
        return f"den {'Filter' if match.group(1) == 'filter' else 'Test'} „{match.group(2)}“ gibt es nicht"
    match = re.match(r"Encountered unknown tag '([^']*)'", message)
    if match:
        return f"den Befehl „{match.group(1)}“ gibt es nicht"
    if "unexpected end of template" in message.lower() or message.startswith("expected token"):
        return "der Ausdruck ist unvollständig oder falsch geschrieben"
    return "der Ausdruck ist falsch geschrieben"


def _error(hit: TagHit, part: str, reason: str, technical: str = "") -> ValidationError:
    where = hit.paragraph.where(part)
    text = f"Fehler im Platzhalter „{hit.text}“ ({where}): {reason}.{_around(hit)} {HINT}"
    return ValidationError(text + (f" {technical}" if technical else ""), field="file")


def _around(hit: TagHit) -> str:
    text = surroundings(hit)
    return f" Text an dieser Stelle: „{text}“." if text != hit.text else ""


def _keyword(body: str) -> str:
    words = body.strip().lstrip("-+").strip().split()
    return words[0] if words else ""


def _check_one(env: SandboxedEnvironment, hit: TagHit, part: str) -> ValidationError | None:
    if not hit.closed:
        closer = "}}" if hit.kind == "{{" else "%}" if hit.kind == "{%" else "#}"
        return _error(hit, part, f"der Platzhalter wird im selben Absatz nicht geschlossen (es fehlt „{closer}“)")
    if hit.kind == "{#":
        return None
    prefix, body = split_prefix(normalise_tag_text(hit.text[2:-2]))
    if hit.kind == "{{" and prefix:
        return unsupported_tag_error(hit, part, prefix)
    if hit.kind == "{{":
        source = "{{" + body + "}}"
    else:
        keyword = _keyword(body)
        if keyword in _NOT_FOR_LETTERS:
            return _error(hit, part, f"„{keyword}“ wird in Briefvorlagen nicht unterstützt")
        if keyword in _CLOSERS or keyword == "else":
            if body.strip().strip("-+").strip() != keyword:
                return _error(hit, part, f"nach „{keyword}“ darf nichts weiter stehen")
            return None
        if keyword == "set" and "=" in body:
            source = "{%" + body + "%}"
        elif keyword in _BLOCKS:
            source = "{%" + body + "%}{% " + _BLOCKS[keyword] + " %}"
        elif keyword == "elif":
            source = "{% if true %}{%" + body + "%}{% endif %}"
        else:
            return _error(hit, part, f"den Befehl „{keyword}“ gibt es nicht" if keyword else "der Befehl fehlt")
    try:
        env.compile(source, raw=True)
    except TemplateSyntaxError as exc:
        return _error(hit, part, _reason(exc, source), _technical(exc.message or ""))
    return None


def _check_blocks(hits: list[TagHit], part: str) -> ValidationError | None:
    stack: list[tuple[str, TagHit]] = []
    for hit in hits:
        if hit.kind != "{%":
            continue
        body = split_prefix(normalise_tag_text(hit.text[2:-2]))[1]
        keyword = _keyword(body)
        if keyword == "set" and "=" in body:
            continue
        if keyword in _BLOCKS:
            stack.append((keyword, hit))
        elif keyword in ("elif", "else"):
            if not stack or stack[-1][0] not in (("if",) if keyword == "elif" else ("if", "for")):
                return _error(hit, part, f"„{keyword}“ steht außerhalb einer passenden Bedingung {{% if … %}}")
        elif keyword in _CLOSERS:
            if not stack:
                return _error(hit, part, "dieser Platzhalter schließt einen Block, der vorher nicht geöffnet wurde")
            opened, at = stack.pop()
            if _CLOSERS[keyword] != opened:
                return _error(hit, part, f"er passt nicht zu „{at.text}“ ({at.paragraph.where(part)}); "
                                         f"dort fehlt vorher „{{% {_BLOCKS[opened]} %}}“")
    if stack:
        opened, at = stack[-1]
        return _error(at, part, f"der Block wird nicht geschlossen; es fehlt „{{% {_BLOCKS[opened]} %}}“ "
                                f"(bei Absatz-Platzhaltern „{{%p {_BLOCKS[opened]} %}}“)")
    return None


def unsupported_tag_error(hit: TagHit, part: str, prefix: str) -> ValidationError:
    body = split_prefix(hit.text[2:-2])[1].strip()
    return _error(hit, part, f"„{{{{{prefix} … }}}}“ erwartet {_OBJECT_TAGS[prefix]}, das KI-Post nicht einsetzt "
                             f"(docxtpl-Objekte wie RichText oder InlineImage werden nicht unterstützt). Bitte "
                             f"„{{{{ {body} }}}}“ schreiben; Bilder und Verweise direkt in die Word-Vorlage einfügen")


def find_unsupported_tags(part_xml: bytes, part: str, *, pages: bool = False) -> ValidationError | None:
    """docxtpl's {{r …}}, {{p …}}, {{tr …}}, {{tc …}} insert docxtpl objects; with text they break the file."""
    for hit in find_tags(read_paragraphs(part_xml, pages=pages)):
        if hit.kind == "{{" and hit.closed:
            prefix = split_prefix(normalise_tag_text(hit.text[2:-2]))[0]
            if prefix:
                return unsupported_tag_error(hit, part, prefix)
    return None


def first_tag_error(env: SandboxedEnvironment, part_xml: bytes, part: str, *, pages: bool = False) -> ValidationError:
    """The first placeholder that is wrong on its own (syntax, unknown or unsupported command)."""
    for hit in find_tags(read_paragraphs(part_xml, pages=pages)):
        error = _check_one(env, hit, part)
        if error is not None:
            return error
    return ValidationError(f"Die Vorlage enthält einen Befehl, der in Briefvorlagen nicht unterstützt wird ({part}).", field="file")


def syntax_error(env: SandboxedEnvironment, part_xml: bytes, part: str, exc: TemplateSyntaxError,
                 source: str, *, pages: bool = False) -> ValidationError:
    """The first faulty placeholder of a part, as the user wrote it and where it is."""
    hits = list(find_tags(read_paragraphs(part_xml, pages=pages)))
    for hit in hits:
        error = _check_one(env, hit, part)
        if error is not None:
            return error
    error = _check_blocks(hits, part)
    if error is not None:
        return error
    # Nothing found on the document as seen: say at least which paragraph Jinja stumbled over.
    hit = locate(source, exc.lineno or 1, hits)
    if hit is not None:
        return _error(hit, part, _reason(exc, source), _technical(exc.message or ""))
    return ValidationError(f"Fehler in einem Platzhalter ({part}): {_reason(exc, source)}. {HINT} "
                           f"{_technical(exc.message or '')}", field="file")


# -- runtime errors -------------------------------------------------------------------------------
_SOURCE_TAG = re.compile(r"\{\{.*?\}\}|\{%.*?%\}")
_RUNTIME_REASONS: tuple[tuple[type[BaseException], str], ...] = (
    (ZeroDivisionError, "Division durch null"),
    (OverflowError, "eine Zahl oder ein Bereich ist zu groß"),
    (TypeError, "Werte passen nicht zusammen, z. B. Zahl und Text"),
    (RecursionError, "ein Makro ruft sich zu oft selbst auf"),
    (MemoryError, "zu viel Speicher nötig"),
)


def _hit_canonical(hit: TagHit) -> str:
    return canonical(hit.kind + normalise_tag_text(hit.text[2:-2]) + hit.text[-2:]) if hit.closed else ""


def locate(source: str, lineno: int, hits: list[TagHit], context: Mapping[str, Any] | None = None,
           env: SandboxedEnvironment | None = None) -> TagHit | None:
    """The placeholder behind line ``lineno`` of the compiled source (the n-th of its kind)."""
    lines = source.split("\n")
    if not 0 < lineno <= len(lines):
        return None
    seen: dict[str, int] = {}
    for line in lines[:lineno - 1]:
        for tag in _SOURCE_TAG.findall(line):
            key = canonical(tag)
            seen[key] = seen.get(key, 0) + 1
    candidates = []
    for tag in _SOURCE_TAG.findall(lines[lineno - 1]):
        key = canonical(tag)
        matching = [hit for hit in hits if _hit_canonical(hit) == key]
        index = seen.get(key, 0)
        seen[key] = index + 1
        if index < len(matching):
            candidates.append((tag, matching[index]))
    if not candidates:
        return None
    if context is not None and env is not None and len(candidates) > 1:
        # Several placeholders in the paragraph: the one that fails on its own is the culprit.
        for tag, hit in candidates:
            if tag.startswith("{{"):
                try:
                    with sandbox.budget(1.0):
                        env.compile_expression(tag[2:-2].strip())(**context)
                except Exception:  # noqa: BLE001 - any failure marks the culprit
                    return hit
    return candidates[0][1]


def runtime_error(part_xml: bytes, part: str, source: str, exc: BaseException, context: Mapping[str, Any],
                  env: SandboxedEnvironment, *, sample: bool, pages: bool = False) -> ValidationError:
    """A failure while filling in: the reason in German, the placeholder and where it is."""
    if isinstance(exc, SecurityError):
        return ValidationError(f"Die Vorlage versucht einen unerlaubten Zugriff ({part}; {exc}).",
                               field="file" if sample else None)
    if isinstance(exc, (sandbox.TemplateLimitExceeded, sandbox.UnsupportedObject)):
        reason = exc.reason
    else:
        reason = next((text for kind, text in _RUNTIME_REASONS if isinstance(exc, kind)), "ein Platzhalter löst einen Fehler aus")
    # Jinja rewrites tracebacks so that template frames carry the template line; the compiled
    # source starts every paragraph on its own line.
    lines = [frame.lineno for frame in traceback.extract_tb(exc.__traceback__) if frame.filename == "<template>"]
    hit = None
    if lines:
        hits = list(find_tags(read_paragraphs(part_xml, pages=pages)))
        hit = locate(source, lines[-1], hits, context, env)
    what = "mit Beispieldaten füllen" if sample else "mit diesen Angaben füllen"
    where = hit.paragraph.where(part) if hit is not None else part
    found = f" Platzhalter „{hit.text}“.{_around(hit)}" if hit is not None else ""
    technical = "" if isinstance(exc, (sandbox.TemplateLimitExceeded, sandbox.UnsupportedObject)) else (
        f" {_technical(f'{type(exc).__name__}: {exc}')}")
    return ValidationError(
        f"Die Vorlage lässt sich nicht {what}: {reason} ({where}).{found} Bitte die Platzhalter dort prüfen.{technical}",
        field="file" if sample else None,
    )
