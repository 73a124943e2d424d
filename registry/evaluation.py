"""Evaluation sets: validating an uploaded CSV, and loading it for the gates.

Uploads are bounded (EVALUATION_MAX_BYTES, EVALUATION_MAX_ROWS), parsed in chunks of
rows so a web worker's memory does not grow with the file, and checked before anything
is stored:
an empty or binary file, a missing column or a non-numeric label is refused whole.
"""

import csv
import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from django.conf import settings

from registry.errors import InvalidInput, RequestTooLarge

if TYPE_CHECKING:
    import pandas as pd

SNIFF_BYTES = 64 * 1024
# Rows parsed at a time when an upload is checked: a few MB of text columns.
CHUNK_ROWS = 100_000


@dataclass
class EvaluationSpec:
    label_column: str = "y_true"
    prediction_column: str = "y_pred"
    score_column: str = ""
    sensitive_features: list[str] = field(default_factory=list)

    @property
    def numeric(self) -> dict[str, str]:
        """Numeric columns by the request field that named them."""
        columns = {"label_column": self.label_column, "prediction_column": self.prediction_column}
        if self.score_column:
            columns["score_column"] = self.score_column
        return columns

    @property
    def needed(self) -> list[str]:
        return list(dict.fromkeys([*self.numeric.values(), *self.sensitive_features]))


@dataclass
class ParsedEvaluation:
    rows: int
    columns: list[str]
    sha256: str
    size_bytes: int


def max_bytes() -> int:
    return int(getattr(settings, "EVALUATION_MAX_BYTES", 200 * 1024 * 1024))


def max_rows() -> int:
    return int(getattr(settings, "EVALUATION_MAX_ROWS", 20_000_000))


def _bad(detail: str, field_name: str = "file") -> InvalidInput:
    return InvalidInput(detail, errors={field_name: [detail]})


def _header(upload) -> list[str]:
    upload.seek(0)
    head = upload.read(SNIFF_BYTES)
    if not head.strip():
        raise _bad("The file is empty.")
    if b"\x00" in head:
        raise _bad("The file is binary, not a CSV text file.")
    try:
        text = head.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        # A multi-byte character may straddle the sniff boundary; only earlier bytes count.
        if exc.start < len(head) - 4:
            raise _bad("The file is not UTF-8 text.") from exc
        text = head[: exc.start].decode("utf-8-sig")
    if text.lstrip()[:1] in ("{", "[", "<"):
        raise _bad("The file looks like JSON or XML, not CSV.")
    first_line = text.splitlines()[0] if text.splitlines() else ""
    try:
        header = next(csv.reader([first_line]))
    except (csv.Error, StopIteration) as exc:
        raise _bad("The file has no CSV header row.") from exc
    header = [name.strip() for name in header]
    if len(header) < 2 or any(not name for name in header):
        raise _bad("The first line must be a CSV header naming every column.")
    if len(set(header)) != len(header):
        raise _bad("The header names a column twice.")
    return header


def parse_upload(upload, spec: EvaluationSpec) -> ParsedEvaluation:
    """Validate an uploaded CSV against `spec`; raise InvalidInput with field errors."""
    if upload.size > max_bytes():
        raise RequestTooLarge(f"The file is larger than {max_bytes()} bytes.")
    header = _header(upload)
    missing = {
        name: [f"Column {column!r} is not in the file (columns: {', '.join(header)})."]
        for name, column in spec.numeric.items()
        if column not in header
    }
    absent = [c for c in spec.sensitive_features if c not in header]
    if absent:
        missing["sensitive_features"] = [f"Not in the file: {', '.join(absent)}."]
    if missing:
        raise InvalidInput(next(iter(missing.values()))[0], errors=missing)

    # pandas is imported where it is used: every web process imports this module, and
    # pandas would add some 50 MB to each, for the rare request that uploads a file.
    import pandas as pd

    limit = max_rows()
    rows = 0
    upload.seek(0)
    try:
        # In chunks of rows, reading only the named columns: the web worker holds one
        # chunk at a time, whatever the file's size.
        chunks = pd.read_csv(
            upload,
            usecols=spec.needed,
            dtype=dict.fromkeys(spec.sensitive_features, "str"),
            skipinitialspace=True,
            encoding="utf-8-sig",
            chunksize=CHUNK_ROWS,
        )
        for chunk in chunks:
            _require_numbers(chunk, spec, first_line=rows + 2)
            rows += len(chunk)
            if rows > limit:
                raise RequestTooLarge(f"The file has more than {limit} rows (EVALUATION_MAX_ROWS).")
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise _bad(f"The file is not a valid CSV: {str(exc).splitlines()[0]}") from exc
    if not rows:
        raise _bad("The file has a header but no rows.")

    digest, size = hashlib.sha256(), 0
    upload.seek(0)
    for chunk in upload.chunks():
        digest.update(chunk)
        size += len(chunk)
    upload.seek(0)
    return ParsedEvaluation(rows=rows, columns=header, sha256=digest.hexdigest(), size_bytes=size)


def _require_numbers(chunk: "pd.DataFrame", spec: EvaluationSpec, *, first_line: int) -> None:
    """Every label, prediction and score a finite number; the first bad line is named."""
    import numpy as np
    import pandas as pd

    errors = {}
    for name, column in spec.numeric.items():
        values = pd.to_numeric(chunk[column], errors="coerce").to_numpy(
            dtype=float, na_value=np.nan
        )
        bad = ~np.isfinite(values)
        if bad.any():
            line = first_line + int(np.argmax(bad))
            errors[name] = [f"Column {column!r} must hold numbers; line {line} does not."]
    if errors:
        raise InvalidInput(next(iter(errors.values()))[0], errors=errors)


def load_frame(evaluation) -> "pd.DataFrame":
    """The columns a gate needs, with labels, predictions and scores as numbers."""
    import pandas as pd

    spec = EvaluationSpec(
        evaluation.label_column,
        evaluation.prediction_column,
        evaluation.score_column,
        list(evaluation.sensitive_features),
    )
    dtypes = dict.fromkeys(spec.numeric.values(), "float64")
    # Sensitive features are group labels: read them as text so "1" and "01" stay apart.
    dtypes.update(dict.fromkeys(spec.sensitive_features, "str"))
    with evaluation.file.open("rb") as handle:
        return pd.read_csv(
            handle,
            usecols=spec.needed,
            dtype=dtypes,
            skipinitialspace=True,
            encoding="utf-8-sig",
            engine="c",
        )
