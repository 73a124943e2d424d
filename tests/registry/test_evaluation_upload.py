"""Evaluation uploads: a summary on success; on any bad file, 4xx problem+json and
nothing stored (no row, no file, no audit event)."""

import os

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from audits.models import AuditEvent
from registry.models import EvaluationData
from tests.evaluation_sets import binary_set, to_csv
from tests.factories import make_model, make_version

pytestmark = pytest.mark.django_db

URL = "/api/v1/models/fraud/versions/1/evaluation/"


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.STORAGES = {**settings.STORAGES}
    return settings.MEDIA_ROOT


@pytest.fixture
def ci_api(make_user, api_for):
    ci = make_user("ci-bot", "ci")
    make_version(ci, make_model(make_user("olivia", "owner"), "fraud"))
    return api_for(ci)


def upload(api, content: bytes, **fields):
    body = {"file": SimpleUploadedFile("eval.csv", content, content_type="text/csv"), **fields}
    return api.post(URL, body, format="multipart")


def stored_files(media) -> list[str]:
    return [os.path.join(d, f) for d, _, files in os.walk(media) for f in files]


def test_an_upload_answers_a_summary_and_is_audited(ci_api, media):
    content = to_csv(binary_set(rows=250))
    response = upload(ci_api, content, score_column="score", sensitive_features="group, sex")
    assert response.status_code == 201, response.content
    body = response.json()
    import hashlib

    assert body["rows"] == 250
    assert body["columns"] == ["y_true", "y_pred", "group", "score", "sex"]
    assert body["sha256"] == hashlib.sha256(content).hexdigest()
    assert body["sensitive_features"] == ["group", "sex"]
    assert (body["label_column"], body["prediction_column"]) == ("y_true", "y_pred")
    event = AuditEvent.objects.get(action="evaluation.uploaded")
    assert (event.actor, event.model, event.data["rows"], event.data["sha256"]) == (
        "ci-bot",
        "fraud",
        250,
        body["sha256"],
    )
    [path] = stored_files(media)
    with open(path, "rb") as stored:
        assert stored.read() == content


def test_custom_column_names(ci_api):
    frame = binary_set(rows=50).rename(columns={"y_true": "label", "y_pred": "pred"})
    response = upload(ci_api, to_csv(frame), label_column="label", prediction_column="pred")
    assert response.status_code == 201, response.content


BAD = [
    (b"", "file"),
    (b"   \n\n", "file"),
    (b"y_true,y_pred\n", "file"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00", "file"),
    (b"PK\x03\x04\x14\x00\x00\x00\x08\x00binary zip", "file"),
    (b"y_pred,group\n1,a\n0,b\n", "label_column"),
    (b"y_true,group\n1,a\n0,b\n", "prediction_column"),
    (b"y_true,y_pred,group\nyes,1,a\nno,0,b\n", "label_column"),
    (b"y_true,y_pred,group\n1,1,a\n0,,b\n", "prediction_column"),
    (b"y_true,y_pred,group\n1,1,a\n0\n", "prediction_column"),
    (b"\xff\xfe\xfdnot utf8,y_pred\n1,1\n", "file"),
    (b'{"y_true": [1, 0], "y_pred": [1, 0]}', "file"),
]


@pytest.mark.parametrize(("content", "field"), BAD)
def test_a_bad_file_is_refused_and_nothing_is_kept(ci_api, media, content, field):
    response = upload(ci_api, content, sensitive_features="group" if b"group" in content else "")
    assert response.status_code == 400, response.content
    assert response["Content-Type"] == "application/problem+json"
    assert field in response.json()["errors"], response.json()
    assert EvaluationData.objects.count() == 0
    assert not AuditEvent.objects.filter(action="evaluation.uploaded").exists()
    assert stored_files(media) == []


def test_a_missing_sensitive_feature_or_score_column_is_named(ci_api, media):
    content = to_csv(binary_set(rows=20, with_scores=False))
    response = upload(ci_api, content, sensitive_features="group,ethnicity", score_column="proba")
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert set(errors) == {"sensitive_features", "score_column"}
    assert "ethnicity" in errors["sensitive_features"][0]
    assert stored_files(media) == []


def test_a_file_over_the_limit_is_413_and_nothing_is_kept(ci_api, media, settings):
    settings.EVALUATION_MAX_BYTES = 1000
    response = upload(ci_api, to_csv(binary_set(rows=2000)))
    assert response.status_code == 413
    assert response["Content-Type"] == "application/problem+json"
    assert EvaluationData.objects.count() == 0
    assert stored_files(media) == []


def test_a_file_over_the_row_limit_is_413_and_nothing_is_kept(ci_api, media, settings):
    settings.EVALUATION_MAX_ROWS = 100
    start = AuditEvent.objects.count()
    response = upload(ci_api, to_csv(binary_set(rows=101)))
    assert response.status_code == 413, response.content
    assert response["Content-Type"] == "application/problem+json"
    assert "more than 100 rows" in response.json()["detail"]
    assert EvaluationData.objects.count() == 0
    assert AuditEvent.objects.count() == start
    assert stored_files(media) == []
    # the limit itself is allowed
    assert upload(ci_api, to_csv(binary_set(rows=100))).status_code == 201


def test_a_bad_value_deep_in_the_file_is_named_by_its_line(ci_api, media, monkeypatch):
    from registry import evaluation

    monkeypatch.setattr(evaluation, "CHUNK_ROWS", 10)  # the bad line falls in the third chunk
    frame = binary_set(rows=40).astype({"y_pred": object})
    frame.loc[24, "y_pred"] = "oops"
    response = upload(ci_api, to_csv(frame))
    assert response.status_code == 400
    assert response.json()["errors"]["prediction_column"] == [
        "Column 'y_pred' must hold numbers; line 26 does not."
    ]
    assert stored_files(media) == []


def test_a_request_without_a_file_is_400(ci_api):
    response = ci_api.post(URL, {"label_column": "y"}, format="multipart")
    assert response.status_code == 400
    assert "file" in response.json()["errors"]


def test_who_may_upload(ci_api, make_user, api_for):
    content = to_csv(binary_set(rows=40))
    assert upload(api_for(make_user("rita", "reviewer")), content).status_code == 403
    assert upload(api_for(make_user("oscar", "owner")), content).status_code == 403
    assert upload(api_for(None), content).status_code == 401
    owner = api_for(make_user("olivia-2", "owner"))
    assert (
        owner.post("/api/v1/models/nope/versions/1/evaluation/", {}, format="multipart").status_code
        == 404
    )
