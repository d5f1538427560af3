"""A bounded Jinja sandbox for letter templates.

Jinja's sandbox stops templates from reaching Python internals, but not from asking for a gigabyte
(``{{ 'x' * 10**9 }}``), a number with billions of digits (``{{ 9**(9**9) }}``) or ten billion loop
turns (two nested ``range(100000)``). Here every operation that can grow is checked *before* it
allocates, and each render carries a budget: operations (loop turns, calls, filters), characters
produced (results and output) and wall time. Exceeding any of them raises ``TemplateLimitExceeded``
with a German reason; the engine turns it into a ``ValidationError``.

Rules that keep it cheap for real letters: a sized loop is charged once on entry (not per turn),
plain ``{{ value }}`` output costs one length lookup, and nothing is checked at compile time that
cannot grow (intercepted operators and context-bound filters are never folded into constants).
"""
from __future__ import annotations

import re
import string
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from functools import wraps
from types import BuiltinMethodType
from typing import Any

from docxtpl import InlineImage, Listing, RichText, RichTextParagraph
from jinja2 import nodes, pass_context, pass_eval_context
from jinja2.filters import do_join
from jinja2.ext import Extension
from jinja2.visitor import NodeTransformer
from jinja2.runtime import LoopContext, markup_join
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError, safe_range
from jinja2.utils import _PassArg

MAX_ITEMS = 1_000_000  # longest string or sequence one operation may produce
MAX_INT_BITS = 10_000  # about 3,000 decimal digits
MAX_FORMAT_WIDTH = 1_000  # widths in "%10s", "{:>10}", center(10) …
MAX_SLICES = 10_000
MAX_OPERATIONS = 500_000  # loop turns + calls + filters per render
MAX_CHARS = 20_000_000  # characters produced by operations and output per render
RENDER_SECONDS = 3.0  # wall time per render (one letter, one part)


class TemplateLimitExceeded(Exception):
    """A template asked for more than a letter can need; ``reason`` is German."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class UnsupportedObject(Exception):
    """A docxtpl object (RichText, InlineImage …) reached the output; ``reason`` is German."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def _number(value: int) -> str:
    return f"{value:,}".replace(",", ".")


@dataclass
class Budget:
    deadline: float
    seconds: float
    operations: int = MAX_OPERATIONS
    chars: int = MAX_CHARS

    def tick(self, count: int = 1) -> None:
        self.operations -= count
        if self.operations < 0:
            raise TemplateLimitExceeded(
                f"zu viele Wiederholungen oder Aufrufe (mehr als {_number(MAX_OPERATIONS)} je Brief)")
        if time.monotonic() > self.deadline:
            raise TemplateLimitExceeded(f"die Berechnung dauert zu lange (mehr als {self.seconds:g} Sekunden je Brief)")

    def produce(self, size: int) -> None:
        """One value of ``size`` characters/items: bounded on its own and drawn from the total."""
        if size > MAX_ITEMS:
            raise TemplateLimitExceeded(
                f"ein Text oder eine Liste würde zu lang ({_number(size)} Zeichen bzw. Einträge, "
                f"höchstens {_number(MAX_ITEMS)})")
        self.spend(size)

    def spend(self, chars: int) -> None:
        self.chars -= chars
        if self.chars < 0:
            raise TemplateLimitExceeded(f"die Vorlage erzeugt zu viel Text (mehr als {_number(MAX_CHARS)} Zeichen je Brief)")


_BUDGET: ContextVar[Budget | None] = ContextVar("kipost_letter_budget", default=None)


@contextmanager
def budget(seconds: float = RENDER_SECONDS) -> Iterator[Budget]:
    """The limits of one render; everything a template does inside draws on them."""
    current = Budget(deadline=time.monotonic() + seconds, seconds=seconds)
    token = _BUDGET.set(current)
    try:
        yield current
    finally:
        _BUDGET.reset(token)


def _current() -> Budget:
    # Outside ``budget()`` (a caller rendering a compiled Jinja template directly) every single
    # operation is still size-checked; only the per-render totals start afresh.
    return _BUDGET.get() or Budget(deadline=time.monotonic() + RENDER_SECONDS, seconds=RENDER_SECONDS)


# -- size checks before an operation allocates ---------------------------------------------------
_SIZED = (str, list, tuple)
_PRINTF = re.compile(r"%(?:\([^)]*\))?[#0\- +]*(\*|\d+)?(?:\.(\*|\d+))?")


def _check_size(size: int) -> None:
    if size > MAX_ITEMS:
        _current().produce(size)  # raises with the German reason


def _check_printf(fmt: str) -> None:
    for width, precision in _PRINTF.findall(fmt):
        for value in (width, precision):
            if value == "*" or (value and int(value) > MAX_FORMAT_WIDTH):
                raise TemplateLimitExceeded(f"eine Formatangabe ist zu breit (höchstens {MAX_FORMAT_WIDTH} Stellen)")


def _check_format_spec(fmt: str) -> None:
    for _literal, _field, spec, _conversion in string.Formatter().parse(fmt):
        if spec and "{" in spec:
            raise TemplateLimitExceeded("verschachtelte Formatangaben ({:{breite}}) sind nicht erlaubt")
        for digits in re.findall(r"\d+", spec or ""):
            if int(digits) > MAX_FORMAT_WIDTH:
                raise TemplateLimitExceeded(f"eine Formatangabe ist zu breit (höchstens {MAX_FORMAT_WIDTH} Stellen)")


def _check_width(width: Any) -> None:
    if isinstance(width, int) and width > MAX_FORMAT_WIDTH:
        raise TemplateLimitExceeded(f"eine Breitenangabe ist zu groß (höchstens {MAX_FORMAT_WIDTH})")


def _check_replace(text: Any, old: Any, new: Any) -> None:
    text, old, new = str(text), str(old), str(new)
    if len(new) > len(old):
        hits = text.count(old) if old else len(text) + 1
        _check_size(len(text) + hits * (len(new) - len(old)))


def _int_bits(value: int) -> int:
    return abs(value).bit_length()


def _check_binop(operator: str, left: Any, right: Any) -> int:
    """Checks before the operation; returns the size of a sized result (0 if none)."""
    ints = isinstance(left, int) and isinstance(right, int)
    if operator == "**" and ints:
        if right > 0 and _int_bits(left) > 1 and _int_bits(left) * right > MAX_INT_BITS:
            raise TemplateLimitExceeded(f"eine Zahl würde zu groß (mehr als {_number(MAX_INT_BITS)} Bit)")
    elif operator == "*":
        if ints:
            if _int_bits(left) + _int_bits(right) > MAX_INT_BITS:
                raise TemplateLimitExceeded(f"eine Zahl würde zu groß (mehr als {_number(MAX_INT_BITS)} Bit)")
        elif isinstance(left, _SIZED) and isinstance(right, int):
            size = len(left) * max(right, 0)
            _check_size(size)
            return size
        elif isinstance(right, _SIZED) and isinstance(left, int):
            size = len(right) * max(left, 0)
            _check_size(size)
            return size
    elif operator == "+" and isinstance(left, _SIZED) and isinstance(right, _SIZED):
        size = len(left) + len(right)
        _check_size(size)
        return size
    elif operator == "%" and isinstance(left, str):
        _check_printf(left)
    return 0


# -- filters ------------------------------------------------------------------------------------
def _pre_indent(value: Any, width: Any = 4, *args: Any, **kwargs: Any) -> None:
    text = str(value)
    step = len(width) if isinstance(width, str) else width if isinstance(width, int) else 0
    _check_size(len(text) + (text.count("\n") + 1) * max(step, 0))


def _pre_sum(iterable: Any, attribute: Any = None, start: Any = 0) -> None:
    if not isinstance(start, (int, float)):
        raise TemplateLimitExceeded("sum() darf nur Zahlen addieren")


def _pre_slices(value: Any, slices: Any = 1, *args: Any, **kwargs: Any) -> None:
    if isinstance(slices, int) and slices > MAX_SLICES:
        raise TemplateLimitExceeded(f"zu viele Teile (höchstens {_number(MAX_SLICES)})")


def _pre_batch(value: Any, linecount: Any = 1, *args: Any, **kwargs: Any) -> None:
    if isinstance(linecount, int):
        _check_size(linecount)


_FILTER_CHECKS: dict[str, Callable[..., None]] = {
    "center": lambda value, width=80: _check_width(width),
    "indent": _pre_indent,
    "format": lambda value, *args, **kwargs: _check_printf(str(value)),
    "replace": lambda value, old, new, count=None: _check_replace(value, old, new),
    "sum": _pre_sum,
    "slice": _pre_slices,
    "batch": _pre_batch,
}
# Filters that emit raw markup (data would become document XML) or only help debugging.
_REMOVED_FILTERS = ("safe", "urlize", "xmlattr", "pprint")


@pass_eval_context
def _join(eval_ctx: Any, value: Any, d: str = "", attribute: Any = None) -> Any:
    """Jinja's join, sized before joining (the items are listed first: a generator is read once)."""
    items = value if isinstance(value, (list, tuple)) else list(value)
    _check_size(len(items))
    _check_size(sum(len(str(item)) for item in items) + len(str(d)) * len(items))
    return do_join(eval_ctx, items, d, attribute)


def _bounded_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    pass_arg = _PassArg.from_obj(func)
    precheck = _FILTER_CHECKS.get(name)

    # pass_context: never folded into a constant at compile time, so every run pays its budget.
    @pass_context
    @wraps(func)
    def bounded(context: Any, value: Any, *args: Any, **kwargs: Any) -> Any:
        _current().tick()
        if precheck is not None:
            precheck(value, *args, **kwargs)
        if pass_arg is _PassArg.context:
            result = func(context, value, *args, **kwargs)
        elif pass_arg is _PassArg.eval_context:
            result = func(context.eval_ctx, value, *args, **kwargs)
        elif pass_arg is _PassArg.environment:
            result = func(context.environment, value, *args, **kwargs)
        else:
            result = func(value, *args, **kwargs)
        if isinstance(result, _SIZED):
            _current().produce(len(result))
        return result

    return bounded


# -- str methods ---------------------------------------------------------------------------------
_STR_METHODS = frozenset({
    "upper", "lower", "title", "capitalize", "casefold", "swapcase", "strip", "lstrip", "rstrip", "split", "rsplit",
    "splitlines", "partition", "rpartition", "startswith", "endswith", "find", "rfind", "index", "rindex", "count",
    "replace", "join", "format", "format_map", "ljust", "rjust", "center", "zfill", "removeprefix", "removesuffix",
    "isalnum", "isalpha", "isascii", "isdigit", "isdecimal", "isnumeric", "isspace", "islower", "isupper", "istitle",
})
_ALLOWED_METHODS: tuple[tuple[type, frozenset[str]], ...] = (
    (str, _STR_METHODS),
    (bool, frozenset()),
    (int, frozenset({"bit_length"})),
    (float, frozenset({"is_integer"})),
    (list, frozenset({"index", "count", "copy"})),
    (tuple, frozenset({"index", "count"})),
    (dict, frozenset({"get", "items", "keys", "values", "copy"})),
)


def _precheck_str_method(method: BuiltinMethodType, args: tuple[Any, ...]) -> None:
    name, text = method.__name__, method.__self__
    if name in ("ljust", "rjust", "center", "zfill") and args:
        _check_width(args[0])
    elif name == "replace" and len(args) >= 2:
        _check_replace(text, args[0], args[1])
    elif name == "join" and args:
        items = args[0]
        if isinstance(items, (list, tuple, str)):
            _check_size(sum(len(str(item)) for item in items) + len(text) * len(items))


# -- docxtpl objects ----------------------------------------------------------------------------
_DOCXTPL_OBJECTS: tuple[tuple[type, str], ...] = (
    (InlineImage, "ein Bild (InlineImage)"),
    (RichTextParagraph, "formatierter Text (RichTextParagraph)"),
    (RichText, "formatierter Text (RichText)"),
    (Listing, "ein Listing"),
)


def docxtpl_object_name(value: Any) -> str | None:
    for kind, label in _DOCXTPL_OBJECTS:
        if isinstance(value, kind):
            return label
    return None


def _finalize(value: Any) -> Any:
    """Every ``{{ … }}`` output: charge its length, refuse docxtpl objects (they need docxtpl's own
    document state: an image part, a hyperlink relationship …, which letters never carry)."""
    if type(value) is str:
        # The common case, kept to a few operations: it runs for every placeholder of every letter.
        budget = _BUDGET.get()
        if budget is not None:
            budget.chars -= len(value)
            if budget.chars < 0 or len(value) > MAX_ITEMS:
                budget.produce(0 if budget.chars < 0 else len(value))
        return value
    label = docxtpl_object_name(value)
    if label is not None:
        link = " mit Verweis (Hyperlink)" if "<w:hyperlink" in str(getattr(value, "xml", "")) else ""
        raise UnsupportedObject(
            f"{label}{link} wird in Briefvorlagen nicht unterstützt. Bitte nur Text einsetzen; Bilder und Verweise "
            "direkt in die Word-Vorlage einfügen.")
    budget = _BUDGET.get()
    if budget is not None and isinstance(value, _SIZED):
        budget.produce(len(value))
    return value


# -- loops and concatenation ------------------------------------------------------------------------
class Guards(Extension):
    """Reached from compiled templates as ``environment.extensions[…]``; no template can shadow it."""

    identifier = "kipost.guards"

    def loop(self, iterable: Any, static_chars: int = 0) -> Iterable[Any]:
        budget = _current()
        try:
            count = len(iterable)
        except TypeError:
            return self._counted(iterable, budget, static_chars)
        # Charged on entry: the loop's own text for every turn, and the turns themselves.
        budget.tick(max(count, 1))
        budget.spend(count * static_chars)
        return iterable

    @staticmethod
    def _counted(iterable: Iterable[Any], budget: Budget, static_chars: int) -> Iterator[Any]:
        for item in iterable:
            budget.tick()
            budget.spend(static_chars)
            yield item

    def concat(self, *parts: Any) -> Any:
        texts = [part if isinstance(part, str) else str(part) for part in parts]
        size = sum(map(len, texts))
        _current().produce(size)
        return markup_join(parts)


def _static_chars(node: nodes.Node) -> int:
    return sum(len(data.data) for data in node.find_all(nodes.TemplateData))


class _Rewriter(NodeTransformer):
    """Route every ``for`` and ``~`` of a parsed template through ``Guards``."""

    def _guard(self, name: str, args: list[nodes.Expr], lineno: int) -> nodes.Call:
        call = nodes.Call(nodes.ExtensionAttribute(Guards.identifier, name), args, [], None, None)
        return call.set_lineno(lineno)

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        static = sum(_static_chars(child) for child in node.body)
        node.iter = self._guard("loop", [node.iter, nodes.Const(static)], node.iter.lineno or node.lineno)
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        return self._guard("concat", list(node.nodes), node.lineno)


class LetterEnvironment(ImmutableSandboxedEnvironment):
    """Immutable sandbox (no list/dict changes from templates) with bounded operations."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(extensions=[Guards], finalize=_finalize, **kwargs)
        self.globals.pop("lipsum", None)
        for name in _REMOVED_FILTERS:
            self.filters.pop(name, None)
        self.filters["join"] = _join
        self.filters = {name: _bounded_filter(name, func) for name, func in self.filters.items()}
        self.globals["range"] = self._range

    @staticmethod
    def _range(*args: int) -> range:
        _current().tick()
        return safe_range(*args)

    def guard(self, template: nodes.Template) -> nodes.Template:
        """Rewrite a parsed template so loops and concatenation draw on the budget."""
        rewritten = _Rewriter().visit(template)
        rewritten.set_environment(self)
        return rewritten

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        if not super().is_safe_attribute(obj, attr, value):
            return False
        if callable(value):
            for kind, allowed in _ALLOWED_METHODS:
                if isinstance(obj, kind):
                    return attr in allowed
        return True

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        wrapper = super().wrap_str_format(value)
        if wrapper is not None:
            _check_format_spec(value.__self__)
        return wrapper

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        budget = _current()
        budget.tick()
        size = _check_binop(operator, left, right)
        if size:
            budget.produce(size)
        result = self.binop_table[operator](left, right)
        if operator == "%" and isinstance(result, str):
            budget.produce(len(result))
        return result

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805 - Jinja's signature
        budget = _current()
        budget.tick()
        if not __self.is_safe_callable(__obj):
            raise SecurityError(f"{__obj!r} is not safely callable")
        if isinstance(__obj, LoopContext) and args:
            # loop(children) in a recursive for: the inner iterable is a loop like any other.
            args = (__self.extensions[Guards.identifier].loop(args[0]), *args[1:])
        elif isinstance(__obj, BuiltinMethodType) and isinstance(getattr(__obj, "__self__", None), str):
            _precheck_str_method(__obj, args)
        result = __context.call(__obj, *args, **kwargs)
        # Guards charge for themselves; everything else pays for what it returned.
        if isinstance(result, _SIZED) and not isinstance(getattr(__obj, "__self__", None), Guards):
            budget.produce(len(result))
        return result
