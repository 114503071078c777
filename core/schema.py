"""The OpenAPI schema (drf-spectacular): our authentication classes, the one error format
on every operation, and what JSON Schema can say about the rules the server applies.

- Every operation documents the error responses it can give, all with the body of
  ``core.apis.exception_handler`` (:class:`ErrorOutput`): 400 when it takes input, 401,
  403, 404 when its path names an object or its list is paged, 415 when it takes a body,
  429 when throttled; 409 where the view declares it.
- Path parameters match only what the URL pattern matches (no ``/``; integers >= 0), so a
  schema-valid path always reaches the API (never the HTML 404 page).
- Inputs that refuse undeclared keys (``strict_input = True``) say so
  (``additionalProperties: false``); string inputs say that they may not contain NUL
  characters and, unless blank is allowed, not only whitespace (DRF trims and refuses both).
- Rules the server checks against stored data or today's date, which JSON Schema cannot
  express, are named on the field (:class:`ServerRule` validators) or on the input
  (``server_rules``) as ``x-server-rules``, and the 400 answer is documented for them.
"""

from __future__ import annotations

from typing import Any, Literal

from drf_spectacular import openapi
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers

# A string with at least one character that is not whitespace, and no NUL (DRF refuses
# NUL characters and trims surrounding whitespace before checking for blank).
NOT_BLANK = r"^[^\x00]*[^\x00\s][^\x00]*$"
NO_NUL = r"^[^\x00]*$"
PATH_SEGMENT = r"^[^/\x00]+$"


class ErrorOutput(serializers.Serializer):
    """The one error format: a message, and field errors by field (a list of messages, or
    an object of nested field errors); 409 refusals carry their reason codes in
    ``errors.reasons``."""

    detail = serializers.CharField()
    # A declared field (SerializerMetaclass moves it into ``_declared_fields``), so it does
    # not shadow ``Serializer.errors`` at run time as the stub's class attribute suggests.
    errors = serializers.DictField(  # type: ignore[assignment]
        child=serializers.JSONField(),
        help_text="field -> list of messages (or nested field -> messages); "
        "`reasons` -> reason codes on 409",
    )


ERROR_DESCRIPTIONS = {
    "400": "Invalid input: field errors in `errors`.",
    "401": "Not authenticated: no, an invalid or an expired token.",
    "403": "Your role or site does not allow this (or the account is locked).",
    "404": "Not found, or not visible to you (another site's objects are 404, never 403).",
    "409": "Refused in the current state; reason codes in `errors.reasons`.",
    "415": "The body is not JSON.",
    "429": "Too many requests; retry later.",
}


def error_response(code: int | str, description: str | None = None) -> OpenApiResponse:
    return OpenApiResponse(ErrorOutput, description=description or ERROR_DESCRIPTIONS[str(code)])


class ServerRule:
    """A validator that only documents: the service checks this rule against stored data
    or today's date (e.g. "not in the future", "an existing participant at your sites"),
    which JSON Schema cannot express. Shown in the schema as ``x-server-rules``; a request
    breaking it is refused with 400 and the message under the field's name."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __call__(self, value: Any) -> None:
        return None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ServerRule) and other.text == self.text

    def __hash__(self) -> int:
        return hash(self.text)


NOT_FUTURE = ServerRule("not in the future")  # core.refusals.not_future


def _server_rules(field: serializers.Field[Any, Any, Any, Any]) -> list[str]:
    return [v.text for v in getattr(field, "validators", []) if isinstance(v, ServerRule)]


class AutoSchema(openapi.AutoSchema):
    """drf-spectacular's AutoSchema, made to describe what the server really answers."""

    # --- responses: the error format on every operation ------------------------------------
    def _takes_body(self) -> bool:
        return self.method in ("PUT", "PATCH", "POST") and self.get_request_serializer() is not None

    def _error_codes(self) -> list[str]:
        codes = ["401", "403"]
        has_path_params = "{" in self.path
        parameters = [p for p in self._get_parameters() if isinstance(p, dict)]
        has_query = any(p.get("in") == "query" for p in parameters)
        paginator = self._get_paginator()
        paged = paginator is not None and any(
            p.get("in") == "query" and p.get("name") == paginator.page_query_param
            for p in parameters
        )
        if self._takes_body() or has_query or getattr(self.view, "server_rules_400", False):
            codes.append("400")
        if has_path_params or paged:  # a page past the end is 404
            codes.append("404")
        if self._takes_body():
            codes.append("415")
        if self.view.get_throttles():
            codes.append("429")
        return codes

    def _get_response_bodies(
        self, direction: Literal["request", "response"] = "response"
    ) -> dict[str, Any]:
        responses = super()._get_response_bodies(direction)
        for code in self._error_codes():
            if code not in responses:
                responses[code] = self._get_response_for_code(
                    error_response(code), code, direction=direction
                )
        return dict(sorted(responses.items()))

    # --- parameters: only what the URL patterns match --------------------------------------
    def _get_parameters(self) -> list[dict[str, Any]]:
        parameters = super()._get_parameters()
        for parameter in parameters:
            if parameter.get("in") != "path":
                continue
            schema = parameter.setdefault("schema", {"type": "string"})
            if schema.get("type") == "string" and "pattern" not in schema:
                schema["pattern"] = PATH_SEGMENT
            elif schema.get("type") == "integer":
                schema.setdefault("minimum", 0)
                schema.setdefault("maximum", 2**31 - 1)
        return parameters

    # --- inputs: what the serializers refuse ------------------------------------------------
    def _get_request_for_media_type(
        self,
        serializer: serializers.BaseSerializer[Any],
        direction: Literal["request", "response"] = "request",
    ) -> Any:
        # Our PATCH inputs are validated as declared (never ``partial=True``): each input
        # says which of its fields are optional, so "required" stays true for PATCH too.
        method = self.method
        if method == "PATCH":
            self.method = "PUT"
        try:
            return super()._get_request_for_media_type(serializer, direction)
        finally:
            self.method = method

    def _map_serializer_field(
        self,
        field: serializers.Field[Any, Any, Any, Any],
        direction: Literal["request", "response"],
        bypass_extensions: bool = False,
    ) -> dict[str, Any] | None:
        schema = super()._map_serializer_field(field, direction, bypass_extensions)
        if schema is None or direction != "request":
            return schema
        if (
            isinstance(field, serializers.CharField)
            and schema.get("type") == "string"
            and "enum" not in schema
            and "format" not in schema
        ):
            schema.setdefault("pattern", NO_NUL if field.allow_blank else NOT_BLANK)
        rules = _server_rules(field)
        if rules:
            schema["x-server-rules"] = rules
            note = "Checked by the server: " + "; ".join(rules) + "."
            schema["description"] = (
                f"{schema['description']} {note}" if schema.get("description") else note
            )
        return schema

    def _map_basic_serializer(
        self, serializer: serializers.BaseSerializer[Any], direction: Literal["request", "response"]
    ) -> dict[str, Any]:
        schema = super()._map_basic_serializer(serializer, direction)
        if direction == "request":
            if getattr(serializer, "strict_input", False):
                schema["additionalProperties"] = False
            rules = list(getattr(serializer, "server_rules", ()))
            if rules:
                schema["x-server-rules"] = rules
            min_properties = getattr(serializer, "min_properties", None)
            if min_properties:
                schema["minProperties"] = min_properties
        elif getattr(serializer, "closed_output", False):
            schema["additionalProperties"] = False
        return schema


class TokenScheme(OpenApiAuthenticationExtension):
    target_class = "core.authentication.TokenAuthentication"
    name = "tokenAuth"

    def get_security_definition(self, auto_schema: openapi.AutoSchema) -> dict[str, str]:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Token <token>` from POST /api/v1/auth/login/ (expires; revoked by logout).",
        }


class SessionScheme(OpenApiAuthenticationExtension):
    target_class = "core.authentication.SessionAuth"
    name = "cookieAuth"

    def get_security_definition(self, auto_schema: openapi.AutoSchema) -> dict[str, str]:
        return {"type": "apiKey", "in": "cookie", "name": "sessionid"}
