"""JSON from users, parsed with a bound on nesting.

Python's json module decodes arrays and objects by recursion, so a body of ten
thousand "[" ends in RecursionError, a 500, instead of a refusal. Every place that
decodes user JSON (the API's parser, JSON fields sent as form or multipart fields,
the admin's JSON form fields) measures the nesting first, with regular expressions
and a running sum that recurse nowhere, and refuses past JSON_MAX_DEPTH levels.
"""

import json
import re
from itertools import accumulate

from django import forms
from django.core.exceptions import ValidationError
from django.forms.fields import JSONString
from rest_framework import parsers, serializers
from rest_framework.exceptions import ParseError
from rest_framework.utils import json as drf_json

# Levels of arrays and objects, counting the outermost: {"card": {...}} is 2. Far
# above what any model card, tag set, metric set or policy needs (two or three), low
# enough that json's recursion stays well inside Python's default limit of 1,000.
JSON_MAX_DEPTH = 64

# A JSON string as the decoder reads one: from a quote to the first quote that no
# backslash escapes. DOTALL so that a backslash before a line break is skipped as the
# decoder would skip it, rather than ending the match early.
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


class JSONTooDeep(json.JSONDecodeError):
    """A JSONDecodeError, so that code that already catches malformed JSON refuses
    this too."""

    def __init__(self, doc: str, limit: int):
        super().__init__(too_deep_message(limit), doc, 0)


def too_deep_message(limit: int = JSON_MAX_DEPTH) -> str:
    return f"JSON nested deeper than {limit} levels of arrays and objects is not accepted."


def nesting_depth(text: str) -> int:
    """The deepest nesting of arrays and objects in `text`, brackets inside strings
    left out. Wherever the decoder reads `text` without error, this is the depth it
    reaches: strings end where its strings end, and nothing else holds a quote or a
    bracket. Past an error (an unterminated string, say) the count may only run high,
    which refuses text the decoder would refuse anyway."""
    if text.count("[") + text.count("{") == 0:
        return 0
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0)


def check_depth(text: str, limit: int = JSON_MAX_DEPTH) -> None:
    # Fewer opening brackets than the limit cannot nest past it: no scan needed.
    if text.count("[") + text.count("{") > limit and nesting_depth(text) > limit:
        raise JSONTooDeep(text, limit)


class BoundedJSONDecoder(json.JSONDecoder):
    """json.loads(text, cls=BoundedJSONDecoder): JSONTooDeep past JSON_MAX_DEPTH."""

    def decode(self, s, *args, **kwargs):
        check_depth(s)
        return super().decode(s, *args, **kwargs)


def loads(text: str | bytes, **kwargs):
    if isinstance(text, bytes | bytearray):
        text = text.decode("utf-8")
    check_depth(text)
    return json.loads(text, **kwargs)


class JSONTooDeepError(ParseError):
    default_detail = too_deep_message()
    default_code = "json_too_deep"


class JSONParser(parsers.JSONParser):
    """DRF's JSONParser, refusing nesting past JSON_MAX_DEPTH with a 400
    (urn:modelgov:problem:json-too-deep) before decoding."""

    def parse(self, stream, media_type=None, parser_context=None):
        encoding = parsers.get_encoding(parser_context or {})
        try:
            text = stream.read().decode(encoding) if stream is not None else ""
            parse_constant = drf_json.strict_constant if self.strict else None
            return loads(text, parse_constant=parse_constant)
        except JSONTooDeep as exc:
            raise JSONTooDeepError() from exc
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from exc


class JSONField(serializers.JSONField):
    """A JSON serializer field whose value, sent as a form or multipart field (a JSON
    text rather than parsed JSON), is refused past JSON_MAX_DEPTH."""

    def to_internal_value(self, data):
        if self.binary or getattr(data, "is_json_string", False):
            text = data.decode() if isinstance(data, bytes) else data
            try:
                check_depth(text)
            except JSONTooDeep as exc:
                raise serializers.ValidationError(exc.msg, code="json_too_deep") from exc
        return super().to_internal_value(data)


class JSONFormField(forms.JSONField):
    """Django's JSON form field, refusing nesting past JSON_MAX_DEPTH as a form error.
    For a ModelForm: Meta.field_classes = {"card": JSONFormField, ...}."""

    def __init__(self, *, decoder=None, **kwargs):
        super().__init__(decoder=decoder or BoundedJSONDecoder, **kwargs)

    def to_python(self, value):
        # A JSONString is a value already decoded, not JSON text.
        if isinstance(value, str) and not isinstance(value, JSONString):
            try:
                check_depth(value)
            except JSONTooDeep as exc:
                raise ValidationError(exc.msg, code="json_too_deep") from exc
        return super().to_python(value)
