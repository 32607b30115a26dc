"""Klaviyo ``filter`` grammar: parse, check against an endpoint's allowed fields, evaluate on records.

Grammar (as documented and as the API answers): ``op(field,value)`` conditions, ``and(...)``/``or(...)``/
``not(...)`` combinators and comma-separated top-level expressions (an implicit AND). Values are quoted
strings (``'x'`` or ``"x"``), unquoted ISO-8601 datetimes, numbers, ``true``/``false``, ``null`` and lists
``["a","b"]``. ``has(field)`` takes no value.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from .spec import FilterRule

COMPARISONS = ("greater-than", "greater-or-equal", "less-than", "less-or-equal")
VALUE_OPS = (
    "equals",
    "any",
    "contains",
    "contains-any",
    "contains-all",
    "starts-with",
    "ends-with",
    *COMPARISONS,
)
_DATETIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?(?:Z|[+-]\d{2}:?\d{2})?)?$")
_NUMBER_RE = re.compile(r"^-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?$")
_BARE_RE = re.compile(r"[^,()\[\]\s'\"]+")


class FilterError(ValueError):
    """A filter that the API would answer with 400."""


@dataclass(frozen=True)
class Condition:
    """One ``op(field,value)`` test."""

    op: str
    field: str
    value: Any = None
    is_list: bool = False


@dataclass(frozen=True)
class BoolOp:
    """``and`` / ``or`` / ``not`` over sub-expressions."""

    op: str
    args: tuple[Node, ...]


Node = Condition | BoolOp


def parse_datetime(text: str) -> datetime:
    """Parse an ISO-8601 datetime the way the API accepts it; naive values are UTC."""
    if not _DATETIME_RE.match(text):
        raise FilterError(f"Invalid datetime '{text}'")
    try:
        value = datetime.fromisoformat(text.replace(" ", "T", 1) if "T" not in text else text)
    except ValueError as exc:
        raise FilterError(f"Invalid datetime '{text}'") from exc
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value


@functools.lru_cache(maxsize=65536)
def to_micros(text: str) -> int | None:
    """Stored timestamp string -> epoch microseconds (cached: the same strings are compared often)."""
    try:
        value = datetime.fromisoformat(text)
    except (TypeError, ValueError):
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return dt_micros(value)


def dt_micros(value: datetime) -> int:
    delta = value - _EPOCH
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def error(self, message: str) -> FilterError:
        return FilterError(f"Invalid filter provided: {message} at position {self.pos} in '{self.text}'")

    def ws(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] == " ":
            self.pos += 1

    def peek(self) -> str:
        self.ws()
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def expect(self, char: str) -> None:
        if self.peek() != char:
            raise self.error(f"expected '{char}'")
        self.pos += 1

    def name(self) -> str:
        self.ws()
        m = re.compile(r"[A-Za-z_$][A-Za-z0-9_.$\-]*").match(self.text, self.pos)
        if not m:
            raise self.error("expected a name")
        self.pos = m.end()
        return m.group(0)

    def top(self) -> Node:
        exprs = [self.expr()]
        while self.peek() == ",":
            self.pos += 1
            exprs.append(self.expr())
        if self.peek():
            raise self.error("unexpected trailing text")
        return exprs[0] if len(exprs) == 1 else BoolOp("and", tuple(exprs))

    def expr(self) -> Node:
        op = self.name()
        self.expect("(")
        if op in ("and", "or", "not"):
            args = [self.expr()]
            while self.peek() == ",":
                self.pos += 1
                args.append(self.expr())
            self.expect(")")
            if op == "not" and len(args) != 1:
                raise self.error("not() takes exactly one expression")
            if op != "not" and len(args) < 2:
                raise self.error(f"{op}() needs at least two expressions")
            return BoolOp(op, tuple(args))
        field = self.field()
        if op == "has":
            self.expect(")")
            return Condition(op, field)
        if op not in VALUE_OPS:
            raise FilterError(f"Invalid filter provided: unknown operator '{op}'")
        self.expect(",")
        value, is_list = self.value()
        self.expect(")")
        return Condition(op, field, value, is_list)

    def field(self) -> str:
        self.ws()
        m = re.compile(r"[A-Za-z_$][A-Za-z0-9_.$\- ]*?(?=\s*[,)])").match(self.text, self.pos)
        if not m:
            raise self.error("expected a field name")
        self.pos = m.end()
        return m.group(0)

    def value(self) -> tuple[Any, bool]:
        if self.peek() == "[":
            self.pos += 1
            items: list[Any] = []
            if self.peek() != "]":
                items.append(self.scalar())
                while self.peek() == ",":
                    self.pos += 1
                    items.append(self.scalar())
            self.expect("]")
            return tuple(items), True
        return self.scalar(), False

    def scalar(self) -> Any:
        char = self.peek()
        if char in ("'", '"'):
            return self.quoted(char)
        m = _BARE_RE.match(self.text, self.pos)
        if not m:
            raise self.error("expected a value")
        self.pos = m.end()
        token = m.group(0)
        if token in ("true", "false"):
            return token == "true"
        if token == "null":
            return None
        if _NUMBER_RE.match(token):
            return float(token) if any(c in token for c in ".eE") else int(token)
        if _DATETIME_RE.match(token):
            return parse_datetime(token)
        raise FilterError(
            f"Invalid filter provided: '{token}' is not a valid value (strings must be quoted, "
            "datetimes must be ISO-8601)"
        )

    def quoted(self, quote: str) -> str:
        self.pos += 1
        out: list[str] = []
        while self.pos < len(self.text):
            char = self.text[self.pos]
            if char == "\\" and self.pos + 1 < len(self.text):
                out.append(self.text[self.pos + 1])
                self.pos += 2
                continue
            if char == quote:
                self.pos += 1
                return "".join(out)
            out.append(char)
            self.pos += 1
        raise self.error("unterminated string")


def parse_filter(text: str) -> Node:
    """Parse a filter string into a tree (raises :class:`FilterError`)."""
    if not text or not text.strip():
        raise FilterError("Invalid filter provided: empty filter")
    return _Parser(text).top()


def conditions(node: Node) -> list[Condition]:
    """All conditions in a tree, in order."""
    if isinstance(node, Condition):
        return [node]
    out: list[Condition] = []
    for arg in node.args:
        out.extend(conditions(arg))
    return out


def bool_ops(node: Node) -> set[str]:
    if isinstance(node, Condition):
        return set()
    out = {node.op}
    for arg in node.args:
        out |= bool_ops(arg)
    return out


def check_filter(node: Node, rules: dict[str, FilterRule], allowed_bool: Iterable[str] = ("and",)) -> list[str]:
    """Errors for fields/operators/values the endpoint does not allow (empty = fine)."""
    errors: list[str] = []
    for op in sorted(bool_ops(node) - set(allowed_bool)):
        errors.append(f"Invalid filter provided: operator '{op}' is not supported for this endpoint")
    for cond in conditions(node):
        rule = rules.get(cond.field)
        if rule is None:
            errors.append(f"Invalid filter provided: '{cond.field}' is not a valid field for this endpoint")
            continue
        if cond.op not in rule.operators:
            errors.append(f"Invalid filter provided: operator '{cond.op}' is not supported for field '{cond.field}'")
            continue
        errors.extend(_check_value(cond, rule))
    return errors


def _check_value(cond: Condition, rule: FilterRule) -> list[str]:
    if cond.op == "has":
        return []
    if cond.is_list:
        if rule.lists and cond.op not in rule.lists:
            return [f"Invalid filter provided: operator '{cond.op}' on '{cond.field}' does not accept a list"]
        if not cond.value:
            return [f"Invalid filter provided: empty list for '{cond.field}'"]
        values: Sequence[Any] = cond.value
    else:
        if cond.op in ("any", "contains-any", "contains-all"):
            return [f"Invalid filter provided: operator '{cond.op}' on '{cond.field}' requires a list"]
        values = (cond.value,)
    for value in values:
        problem = _type_problem(value, rule)
        if problem:
            return [f"Invalid filter provided: '{cond.field}' {problem}"]
    return []


def _type_problem(value: Any, rule: FilterRule) -> str | None:
    vtype = rule.value_type
    if vtype == "date-time":
        return None if isinstance(value, datetime) else "must be an unquoted ISO-8601 datetime"
    if vtype == "boolean":
        return None if isinstance(value, bool) else "must be true or false"
    if vtype in ("number", "integer"):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        return None if ok else "must be a number"
    if vtype == "string":
        if not isinstance(value, str):
            return "must be a quoted string"
        if rule.enum and value not in rule.enum:
            return f"must be one of {', '.join(rule.enum)}"
    return None


# ---- evaluation ---------------------------------------------------------------------------------

Getter = Callable[[str], list[Any]]


def evaluate(node: Node, getter: Getter) -> bool:
    """Does a record (seen through ``getter(field) -> values``) satisfy the filter?"""
    if isinstance(node, BoolOp):
        if node.op == "and":
            return all(evaluate(arg, getter) for arg in node.args)
        if node.op == "or":
            return any(evaluate(arg, getter) for arg in node.args)
        return not evaluate(node.args[0], getter)
    return test_values(node, getter(node.field))


def test_values(cond: Condition, values: list[Any]) -> bool:
    """Apply one condition to the (possibly several) values a field has on a record."""
    op = cond.op
    if op == "has":
        return any(v not in (None, "", [], {}) for v in values)
    wanted = list(cond.value) if cond.is_list else [cond.value]
    if wanted and isinstance(wanted[0], datetime):
        target = [dt_micros(w) for w in wanted]
        have = [_as_micros(v) for v in values]
        values = [h for h in have if h is not None]
        wanted = target
    if op == "contains-all":
        flat = set(_flatten(values))
        return all(w in flat for w in wanted)
    return any(_test_one(op, value, wanted) for value in values)


def _test_one(op: str, value: Any, wanted: list[Any]) -> bool:
    if op in ("equals", "any"):
        if isinstance(value, list):
            return any(v in wanted for v in value)
        return value in wanted
    if op == "contains-any":
        items = value if isinstance(value, list) else [value]
        return any(i in wanted for i in items)
    if op == "contains":
        if isinstance(value, list):
            return any(w in value for w in wanted)
        return isinstance(value, str) and any(isinstance(w, str) and w in value for w in wanted)
    if op == "starts-with":
        return isinstance(value, str) and value.startswith(str(wanted[0]))
    if op == "ends-with":
        return isinstance(value, str) and value.endswith(str(wanted[0]))
    if value is None:
        return False
    target = wanted[0]
    try:
        if op == "greater-than":
            return bool(value > target)
        if op == "greater-or-equal":
            return bool(value >= target)
        if op == "less-than":
            return bool(value < target)
        if op == "less-or-equal":
            return bool(value <= target)
    except TypeError:
        return False
    return False


def _as_micros(value: Any) -> int | None:
    if isinstance(value, datetime):
        return dt_micros(value if value.tzinfo else value.replace(tzinfo=timezone.utc))
    if isinstance(value, str):
        return to_micros(value)
    return None


def _flatten(values: Iterable[Any]) -> Iterable[Any]:
    for value in values:
        if isinstance(value, list):
            yield from value
        else:
            yield value


def path_values(obj: Any, dotted: str) -> list[Any]:
    """Values found at a dotted path, walking into lists (``a.b.c`` over ``{"a": [{"b": ...}]}``)."""
    current: list[Any] = [obj]
    for part in dotted.split("."):
        nxt: list[Any] = []
        for item in current:
            if isinstance(item, list):
                for sub in item:
                    if isinstance(sub, dict) and part in sub:
                        nxt.append(sub[part])
            elif isinstance(item, dict) and part in item:
                nxt.append(item[part])
        current = nxt
        if not current:
            return []
    out: list[Any] = []
    for item in current:
        if isinstance(item, list) and item and isinstance(item[0], (dict, list)):
            out.extend(item)
        else:
            out.append(item)
    return out
