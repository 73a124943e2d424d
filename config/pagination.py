from rest_framework import pagination
from rest_framework.exceptions import ValidationError


class PageNumberPagination(pagination.PageNumberPagination):
    page_size_query_param = "page_size"
    max_page_size = 500

    def get_page_size(self, request):
        # DRF ignores a page_size it cannot read and answers a default page; a client
        # that sends one has a bug worth telling it about. Past the maximum is still
        # the maximum, as it always was.
        raw = request.query_params.get(self.page_size_query_param)
        if raw in (None, ""):
            return self.page_size
        try:
            size = int(raw)
        except ValueError:
            size = 0
        if size < 1:
            raise ValidationError(
                {self.page_size_query_param: ["Expected a whole number of at least 1."]}
            )
        return min(size, self.max_page_size)

    def get_paginated_response_schema(self, schema):
        envelope = super().get_paginated_response_schema(schema)
        # The schema is OpenAPI 3.1, where `nullable` is no keyword: null is a type.
        for link in ("next", "previous"):
            envelope["properties"][link].pop("nullable")
            envelope["properties"][link]["type"] = ["string", "null"]
        envelope["required"] = ["count", "next", "previous", "results"]
        return envelope

    def get_schema_operation_parameters(self, view):
        page, size = super().get_schema_operation_parameters(view)
        page["schema"]["minimum"] = 1
        size["schema"]["minimum"] = 1
        size["description"] = (
            f"Results per page: {self.page_size} when left out, at most {self.max_page_size} "
            "(a larger number gives that many)."
        )
        return [page, size]
