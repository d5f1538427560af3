"""One vocabulary for states: a ``StrEnum`` per closed set of codes, each member with its German label.

Codes are German ASCII words (``wartend``, ``zugesagt``, ``veroeffentlicht``), stored as they are and
compared as plain strings (a member equals its code), so templates and raw SQL read the same words.
Labels are what people read. Every state column is declared with ``state_column``: the database
itself refuses a code the enum does not know (a CHECK constraint, named ``ck_<table>_<enum>`` by the
naming convention in ``extensions``), on SQLite as on PostgreSQL.

Named groups (``MessageState.LEFT_TO_SEND`` …) are frozensets set on the class after it is built: an
enum body turns every assignment into a member.
"""
from __future__ import annotations

import re
from enum import StrEnum
from typing import Any

from sqlalchemy import Enum


class LabelledEnum(StrEnum):
    """A StrEnum whose members are declared as ``NAME = "code", "German label"``."""

    label: str

    def __new__(cls, value: str, label: str | None = None):
        member = str.__new__(cls, value)
        member._value_ = value
        member.label = value if label is None else label
        return member

    @classmethod
    def labels(cls) -> dict[str, str]:
        """Code → label in declaration order (choices of a select field, table headers)."""
        return {member.value: member.label for member in cls}

    @classmethod
    def choices(cls, *members: LabelledEnum) -> list[tuple[str, str]]:
        """(code, label) pairs for a form field: the given members, or all."""
        return [(member.value, member.label) for member in (members or tuple(cls))]

    @classmethod
    def label_of(cls, value: Any, default: str | None = None) -> str:
        """The label of a code; an unknown or empty value comes back as it is (or as ``default``)."""
        try:
            return cls(value).label
        except ValueError:
            return default if default is not None else ("" if value is None else str(value))

    @classmethod
    def parse(cls, value: Any) -> LabelledEnum | None:
        """The member for a code, or None for anything else (a URL parameter, a form value)."""
        try:
            return cls(value)
        except ValueError:
            return None


def _snake_case(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def state_column(enum: type[LabelledEnum], length: int = 20, **kwargs: Any) -> Enum:
    """The SQLAlchemy type of a column holding ``enum``'s codes: a VARCHAR with a CHECK constraint
    named after the enum (``ck_<table>_<snake_case enum name>``), refusing unknown strings on write."""
    longest = max(len(member.value) for member in enum)
    if longest > length:
        raise ValueError(f"{enum.__name__}: code of {longest} characters does not fit length {length}")
    return Enum(enum, native_enum=False, create_constraint=True, validate_strings=True,
                values_callable=lambda members: [member.value for member in members],
                name=_snake_case(enum.__name__), length=length, **kwargs)
