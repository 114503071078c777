"""API pagination (its own module: DRF imports it while its views are still loading).

A list answers one page: ``{"count", "next", "previous", "results"}``, all four always
present. The schema says so (drf-spectacular wraps a view's list response in this shape
when the view sets ``pagination_class``)."""

import re

from django.utils.translation import gettext_lazy as _
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import PageNumberPagination


class Pagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500

    def get_page_size(self, request):
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
            raise ValidationError({self.page_size_query_param: [_("Enter a whole number from 1.")]})
        return min(size, self.max_page_size)

    def get_paginated_response_schema(self, schema):
        page = super().get_paginated_response_schema(schema)
        page["required"] = ["count", "next", "previous", "results"]
        page["properties"]["count"]["minimum"] = 0
        return page

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_query_param:
                parameter["description"] = (
                    "Page number, from 1 (or `last`). A page past the end is 404."
                )
                parameter["schema"] = {
                    "oneOf": [{"type": "integer"}, {"type": "string", "enum": ["last"]}]
                }
            elif parameter["name"] == self.page_size_query_param:
                parameter["description"] = (
                    f"Results per page (default {self.page_size}); more than "
                    f"{self.max_page_size} is cut to {self.max_page_size}."
                )
                parameter["schema"] = {"type": "integer", "minimum": 1}
        return parameters
