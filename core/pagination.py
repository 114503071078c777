"""Pages of long lists whose cost does not grow with the list (its own module: DRF imports
it while its views are still loading).

Keyset ("cursor") paging: a page is the ``size`` rows that follow (or precede) the row a
cursor names, in the list's fixed order, so PostgreSQL reads about ``size`` index entries
whatever the page and however long the list. No total is counted: a screen that shows how
many there are uses :func:`count_capped`, exact up to :data:`COUNT_CAP`, then "more than"
(it reads about ``COUNT_CAP / density`` index entries of a filtered list: keep it small).

- :func:`keyset_page` pages any queryset ordered by local fields that end in a unique one
  (``("-registered_at", "-pk")``), all in the same direction; an index on exactly those
  fields (after the filter's equality columns) serves it.
- A cursor is opaque to clients (URL-safe base64 of the direction and the key of the row
  it starts after); a cursor that does not decode, or whose key does not fit the fields,
  is :class:`InvalidCursor` (HTML pages show the first page, the API answers 404).
- :class:`Pagination` is the API's: ``{"next", "previous", "results"}``, all three always
  present, ``next``/``previous`` links or null. The schema says so.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.db.models import Field, Q, QuerySet
from django.utils.translation import gettext_lazy as _
from rest_framework.exceptions import NotFound
from rest_framework.exceptions import ValidationError as ApiValidationError
from rest_framework.pagination import BasePagination
from rest_framework.response import Response
from rest_framework.utils.urls import remove_query_param, replace_query_param

if TYPE_CHECKING:  # pragma: no cover - DRF imports this module while its views load
    from rest_framework.request import Request
    from rest_framework.views import APIView

COUNT_CAP = 100
NEXT, PREVIOUS = "n", "p"


class InvalidCursor(ValueError):
    """A cursor that this list did not make."""


@dataclass(frozen=True)
class CappedCount:
    """How many rows, counted up to ``cap``: ``more`` when there are more than ``cap``."""

    n: int
    cap: int

    @property
    def more(self) -> bool:
        return self.n > self.cap

    @property
    def shown(self) -> int:
        return min(self.n, self.cap)


def count_capped(qs: QuerySet, cap: int | None = None) -> CappedCount:
    """``SELECT count(*) FROM (... ORDER BY <the list's order> LIMIT cap + 1)``: counted
    in the list's own order, so the index that serves the list stops after ``cap + 1``
    rows (without the order PostgreSQL reads every match into a bitmap first).
    ``cap`` defaults to :data:`COUNT_CAP`."""
    cap = COUNT_CAP if cap is None else cap
    return CappedCount(n=qs.values("pk")[: cap + 1].count(), cap=cap)


@dataclass
class KeysetPage:
    """One page: its rows (``object_list``) and the cursors of its neighbours (None at an
    end). ``is_first`` is False when the page was reached through a cursor."""

    object_list: list[Any]
    next_cursor: str | None
    previous_cursor: str | None
    is_first: bool

    def __iter__(self) -> Iterator[Any]:
        return iter(self.object_list)

    def __len__(self) -> int:
        return len(self.object_list)

    @property
    def has_next(self) -> bool:
        return self.next_cursor is not None

    @property
    def has_previous(self) -> bool:
        return self.previous_cursor is not None

    @property
    def has_other_pages(self) -> bool:
        return self.has_next or self.has_previous or not self.is_first


def _order_of(qs: QuerySet) -> tuple[str, ...]:
    given = tuple(qs.query.order_by) or tuple(qs.model._meta.ordering)
    order = tuple(o for o in given if isinstance(o, str))
    if not order or len(order) != len(given):
        raise ValueError("keyset paging needs an order_by() of field names")
    if len({o.startswith("-") for o in order}) != 1:
        raise ValueError("keyset paging needs every order field in the same direction")
    return order


def _field(qs: QuerySet, name: str) -> Field[Any, Any]:
    name = name.lstrip("-")
    model = qs.model
    if name == "pk":
        return model._meta.pk
    try:
        found = model._meta.get_field(name)
    except FieldDoesNotExist as exc:
        raise ValueError(f"keyset paging orders by local fields only, not {name!r}") from exc
    if not isinstance(found, Field) or found.is_relation or not found.concrete:
        raise ValueError(f"keyset paging orders by local fields only, not {name!r}")
    return found


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def _encode(direction: str, key: list) -> str:
    raw = json.dumps([direction, [_plain(v) for v in key]], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode(qs: QuerySet, order: tuple[str, ...], cursor: str) -> tuple[str, list]:
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,400}", cursor or ""):
        raise InvalidCursor(cursor)
    try:
        direction, key = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, TypeError, binascii.Error) as exc:
        raise InvalidCursor(cursor) from exc
    if direction not in (NEXT, PREVIOUS) or not isinstance(key, list) or len(key) != len(order):
        raise InvalidCursor(cursor)
    values = []
    for name, raw in zip(order, key, strict=True):
        if raw is None or isinstance(raw, list | dict | bool):
            raise InvalidCursor(cursor)
        try:
            value = _field(qs, name).to_python(raw)
        except (ValidationError, ValueError, TypeError, OverflowError) as exc:
            raise InvalidCursor(cursor) from exc
        if isinstance(value, datetime) and value.tzinfo is None:
            raise InvalidCursor(cursor)
        values.append(value)
    return direction, values


def _beyond(order: tuple[str, ...], key: list, *, forward: bool) -> Q:
    """Rows strictly after ``key`` in ``order`` (``forward``), or strictly before it.

    ``(a, b) < (x, y)`` as ``a <= x AND (a < x OR (a = x AND b < y))``: the leading
    ``a <= x`` is the index condition, the rest drops the ties."""
    names = [o.lstrip("-") for o in order]
    less = order[0].startswith("-") == forward
    op, op_eq = ("lt", "lte") if less else ("gt", "gte")
    cond = Q()
    for i, name in enumerate(names):
        ties = {n: key[j] for j, n in enumerate(names[:i])}
        cond |= Q(**ties, **{f"{name}__{op}": key[i]})
    return Q(**{f"{names[0]}__{op_eq}": key[0]}) & cond


def _key(row: Any, order: tuple[str, ...]) -> list:
    return [row.pk if o.lstrip("-") == "pk" else getattr(row, o.lstrip("-")) for o in order]


def keyset_page(qs: QuerySet, *, cursor: str | None, size: int) -> KeysetPage:
    """The page of ``qs`` (ordered, see the module docstring) that ``cursor`` names; the
    first page without one. :class:`InvalidCursor` for a cursor this list did not make."""
    order = _order_of(qs)
    if not cursor:
        rows = list(qs[: size + 1])
        nxt = _encode(NEXT, _key(rows[size - 1], order)) if len(rows) > size else None
        return KeysetPage(rows[:size], nxt, None, True)
    direction, key = _decode(qs, order, cursor)
    if direction == NEXT:
        rows = list(qs.filter(_beyond(order, key, forward=True))[: size + 1])
        more, rows = len(rows) > size, rows[:size]
        nxt = _encode(NEXT, _key(rows[-1], order)) if more else None
        prev = _encode(PREVIOUS, _key(rows[0], order)) if rows else None
        return KeysetPage(rows, nxt, prev, False)
    backwards = qs.filter(_beyond(order, key, forward=False)).reverse()
    rows = list(backwards[: size + 1])
    more, rows = len(rows) > size, rows[:size][::-1]
    prev = _encode(PREVIOUS, _key(rows[0], order)) if more else None
    nxt = _encode(NEXT, _key(rows[-1], order)) if rows else None
    return KeysetPage(rows, nxt, prev, not more)


def keyset_page_or_first(qs: QuerySet, *, cursor: str | None, size: int) -> KeysetPage:
    """For HTML pages: a cursor that does not fit (edited by hand, from an older version)
    shows the first page instead of an error."""
    try:
        return keyset_page(qs, cursor=cursor, size=size)
    except InvalidCursor:
        return keyset_page(qs, cursor=None, size=size)


class Pagination(BasePagination):
    """The API's list pages: ``{"next", "previous", "results"}`` (keyset, no total)."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500
    cursor_query_param = "cursor"
    # core.schema documents a 404 for a list paged by this parameter (an invalid cursor)
    page_query_param = cursor_query_param

    def get_page_size(self, request: Request) -> int:
        """``page_size`` is a whole number from 1 (larger than the maximum is cut to it);
        anything else is refused (400), as the schema says."""
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        if not re.fullmatch(r"[0-9]+", raw):
            size = 0
        else:
            size = int(raw) if len(raw) <= 9 else self.max_page_size
        if size < 1:
            raise ApiValidationError(
                {self.page_size_query_param: [_("Enter a whole number from 1.")]}
            )
        return min(size, self.max_page_size)

    def paginate_queryset(
        self,
        queryset: QuerySet[Any, Any] | Sequence[Any],
        request: Request,
        view: APIView | None = None,
    ) -> list[Any]:
        if not isinstance(queryset, QuerySet):
            raise TypeError("keyset paging needs a queryset")
        self.request = request
        try:
            self.page = keyset_page(
                queryset,
                cursor=request.query_params.get(self.cursor_query_param),
                size=self.get_page_size(request),
            )
        except InvalidCursor as exc:
            raise NotFound(_("Invalid page.")) from exc
        return self.page.object_list

    def _link(self, cursor: str | None) -> str | None:
        if cursor is None:
            return None
        return replace_query_param(
            self.request.build_absolute_uri(), self.cursor_query_param, cursor
        )

    def get_paginated_response(self, data: Any) -> Response:
        previous = self._link(self.page.previous_cursor)
        if previous is None and not self.page.is_first:  # back to the first page
            previous = remove_query_param(
                self.request.build_absolute_uri(), self.cursor_query_param
            )
        return Response(
            {"next": self._link(self.page.next_cursor), "previous": previous, "results": data}
        )

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        link = {"type": "string", "format": "uri", "nullable": True}
        return {
            "type": "object",
            "required": ["next", "previous", "results"],
            "properties": {
                "next": {**link, "description": "The next page; null on the last page."},
                "previous": {
                    **link,
                    "description": "The previous page; null on the first page.",
                },
                "results": schema,
            },
        }

    def get_schema_operation_parameters(self, view: APIView | None) -> list[dict[str, Any]]:
        return [
            {
                "name": self.cursor_query_param,
                "required": False,
                "in": "query",
                "description": "Where the page starts: copied from a `next` or `previous` "
                "link (opaque). Without it, the first page; one the list did not make is 404.",
                "schema": {"type": "string"},
            },
            {
                "name": self.page_size_query_param,
                "required": False,
                "in": "query",
                "description": f"Results per page (default {self.page_size}); more than "
                f"{self.max_page_size} is cut to {self.max_page_size}.",
                "schema": {"type": "integer", "minimum": 1},
            },
        ]
