"""Conditions as data: when an item of a definition applies.

A condition is a small JSON object, checked once when a definition is loaded
(:func:`check`) and evaluated by a pure function over plain values (:func:`holds`);
nothing is ever passed to ``eval``. The forms:

- ``{"item": c, "equals": v}`` — item ``c`` has the value ``v`` (for a multi-choice item:
  ``v`` is one of the chosen values);
- ``{"item": c, "in": [v, ...]}`` — item ``c`` has one of the listed values (or, for a
  multi-choice item, at least one chosen value is listed);
- ``{"item": c, "gte": n}`` / ``{"item": c, "lte": n}`` — a number (or an ISO date
  string against an ISO date string) at least / at most ``n``;
- ``{"all": [cond, ...]}``, ``{"any": [cond, ...]}``, ``{"not": cond}``.

An unanswered item satisfies no comparison, so ``{"not": {"item": c, "equals": v}}`` holds
while ``c`` is unanswered. Inside a repeating group ``item`` names a sibling in the same
row first, then an item of the form (the ``lookup`` passed to :func:`holds` does that).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["COMPARISONS", "check", "holds", "items_named"]

COMPARISONS = ("equals", "in", "gte", "lte")
_MISSING = object()

Lookup = Callable[[str], Any]


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def check(condition: Any, where: str, known: Callable[[str], bool]) -> None:
    """Refuse a malformed condition with a ``ValueError`` naming ``where``.

    ``known(code)`` says whether ``code`` is an item the condition may refer to (an
    earlier item of the form or of the row)."""
    if not isinstance(condition, Mapping) or len(condition) == 0:
        raise ValueError(f"{where}: a condition must be an object, got {condition!r}")
    keys = set(condition)
    for combinator in ("all", "any"):
        if combinator in condition:
            parts = condition[combinator]
            if keys != {combinator} or not isinstance(parts, list) or not parts:
                raise ValueError(f"{where}: {combinator!r} takes a non-empty list of conditions")
            for index, part in enumerate(parts):
                check(part, f"{where}.{combinator}[{index}]", known)
            return
    if "not" in condition:
        if keys != {"not"}:
            raise ValueError(f"{where}: 'not' takes one condition and nothing else")
        check(condition["not"], f"{where}.not", known)
        return
    comparisons = keys & set(COMPARISONS)
    if "item" not in condition or len(comparisons) != 1 or keys != {"item"} | comparisons:
        raise ValueError(
            f"{where}: a condition is {{'item': code, one of {list(COMPARISONS)}: value}}, "
            f"'all', 'any' or 'not'; got {dict(condition)!r}"
        )
    target = condition["item"]
    if not isinstance(target, str) or not known(target):
        raise ValueError(f"{where}: the condition names {target!r}, which is not an earlier item")
    (operator,) = comparisons
    operand = condition[operator]
    if operator == "in" and (not isinstance(operand, list) or not operand):
        raise ValueError(f"{where}: 'in' takes a non-empty list of values")
    if operator in ("gte", "lte") and not (_is_number(operand) or isinstance(operand, str)):
        raise ValueError(f"{where}: {operator!r} takes a number or an ISO date")


def items_named(condition: Mapping[str, Any]) -> list[tuple[str, str, Any]]:
    """Every ``(item, operator, operand)`` comparison inside ``condition``."""
    for combinator in ("all", "any"):
        if combinator in condition:
            return [found for part in condition[combinator] for found in items_named(part)]
    if "not" in condition:
        return items_named(condition["not"])
    (operator,) = set(condition) & set(COMPARISONS)
    return [(condition["item"], operator, condition[operator])]


def _compare(value: Any, operator: str, operand: Any) -> bool:
    if value is _MISSING or value is None or value == "" or value == []:
        return False
    if isinstance(value, list):  # multi-choice: any chosen value
        return any(_compare(one, operator, operand) for one in value)
    if operator == "equals":
        return bool(value == operand and type(value) is type(operand))
    if operator == "in":
        return any(value == one and type(value) is type(one) for one in operand)
    if _is_number(operand) and _is_number(value):
        return bool(value >= operand if operator == "gte" else value <= operand)
    if isinstance(operand, str) and isinstance(value, str):  # ISO dates sort as text
        return value >= operand if operator == "gte" else value <= operand
    return False


def holds(condition: Mapping[str, Any] | None, lookup: Lookup | Mapping[str, Any]) -> bool:
    """Whether ``condition`` holds for the values ``lookup`` gives (``None``: always).

    ``lookup`` is a mapping of item codes to values or a function of an item code.
    """
    if condition is None:
        return True
    get: Lookup
    if isinstance(lookup, Mapping):
        values = lookup
        get = lambda code: values.get(code, _MISSING)  # noqa: E731
    else:
        get = lookup
    if "all" in condition:
        return all(holds(part, get) for part in condition["all"])
    if "any" in condition:
        return any(holds(part, get) for part in condition["any"])
    if "not" in condition:
        return not holds(condition["not"], get)
    (operator,) = set(condition) & set(COMPARISONS)
    return _compare(get(condition["item"]), operator, condition[operator])
