"""The filters of the event list and of exports, read from query parameters."""

import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import UTC, datetime, time

from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.utils.dateparse import parse_date, parse_datetime

from audits.chain import format_time

# An unencoded "+" in a query string arrives as a space: "…T09:30:00 02:00".
_SPACED_OFFSET = re.compile(r"(\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?) (\d{2}(?::?\d{2})?)$")

TEXT_LIMITS = {"model": 128, "actor": 150, "action": 64, "object_type": 64}


@dataclass(frozen=True)
class EventFilters:
    """`since` is inclusive and `until` exclusive, so consecutive periods never overlap.
    `action` may end in ".*" to match a whole family (`promotion.*`)."""

    since: datetime | None = None
    until: datetime | None = None
    model: str | None = None
    actor: str | None = None
    action: str | None = None
    object_type: str | None = None

    @classmethod
    def from_query(cls, params: Mapping[str, str]) -> "EventFilters":
        errors: dict[str, list[str]] = {}
        values: dict = {}
        for name in ("since", "until"):
            raw = params.get(name)
            if raw:
                moment = parse_moment(raw)
                if moment is None:
                    errors[name] = [
                        "Expected an ISO 8601 date or date-time, e.g. 2026-01-31 or "
                        "2026-01-31T09:30:00Z."
                    ]
                values[name] = moment
        for name, limit in TEXT_LIMITS.items():
            raw = params.get(name)
            if raw:
                if len(raw) > limit:
                    errors[name] = [f"At most {limit} characters."]
                values[name] = raw
        since, until = values.get("since"), values.get("until")
        if not errors and since and until and since >= until:
            errors["until"] = ["Must be later than since."]
        if errors:
            raise ValidationError(errors)
        return cls(**values)

    def as_dict(self) -> dict[str, str]:
        """The filters that are set, as strings: for manifests and audit events."""
        out = {}
        for field in fields(self):
            value = getattr(self, field.name)
            if value is not None:
                out[field.name] = format_time(value) if isinstance(value, datetime) else value
        return out

    def apply(self, queryset: QuerySet) -> QuerySet:
        if self.since is not None:
            queryset = queryset.filter(occurred_at__gte=self.since)
        if self.until is not None:
            queryset = queryset.filter(occurred_at__lt=self.until)
        for name in ("model", "actor", "object_type"):
            value = getattr(self, name)
            if value is not None:
                queryset = queryset.filter(**{name: value})
        if self.action is not None:
            if self.action.endswith(".*"):
                queryset = queryset.filter(action__startswith=self.action[:-1])
            else:
                queryset = queryset.filter(action=self.action)
        return queryset


def parse_moment(raw: str) -> datetime | None:
    """An ISO 8601 date-time (UTC when it names no offset) or a date (its midnight, UTC)."""
    text = _SPACED_OFFSET.sub(r"\1+\2", raw.strip())
    try:
        moment = parse_datetime(text)
        if moment is None:
            day = parse_date(text)
            if day is None:
                return None
            moment = datetime.combine(day, time.min)
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
