import hashlib
import pathlib

import pytest

from governance.checks import integrity
from registry.models import ModelVersion

CONTENT = b"model weights \x00\x01\x02" * 1000


@pytest.fixture
def root(tmp_path, settings):
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    settings.ARTIFACT_ROOTS = [str(artifacts)]
    (artifacts / "model.bin").write_bytes(CONTENT)
    return artifacts


def version(uri: str, sha: str | None = None, size: int | None = len(CONTENT)) -> ModelVersion:
    return ModelVersion(
        artifact_uri=uri,
        artifact_sha256=sha or hashlib.sha256(CONTENT).hexdigest(),
        artifact_size=size,
    )


def run(v):
    return integrity.run(version=v, settings={})


def test_a_local_artifact_whose_digest_and_size_match_passes(root):
    result = run(version(f"file://{root}/model.bin"))
    assert result.status == "passed"
    assert result.results["verified_content"] is True
    assert result.results["actual_size"] == len(CONTENT)


def test_a_different_digest_fails(root):
    result = run(version(f"file://{root}/model.bin", sha="0" * 64))
    assert result.status == "failed"
    assert "SHA-256 differs" in result.summary


def test_a_different_size_fails(root):
    result = run(version(f"file://{root}/model.bin", size=1))
    assert result.status == "failed"
    assert f"size is {len(CONTENT)} bytes" in result.summary


@pytest.mark.parametrize(
    "uri",
    [
        "file:///etc/passwd",
        "file://{root}/../outside.bin",
        "file://{root}/link.bin",
        "file://{root}-sibling/model.bin",
    ],
)
def test_paths_outside_the_roots_are_refused_without_being_read(root, uri, monkeypatch):
    outside = root.parent / "outside.bin"
    outside.write_bytes(CONTENT)
    (root / "link.bin").symlink_to(outside)
    sibling = root.parent / f"{root.name}-sibling"
    sibling.mkdir()
    (sibling / "model.bin").write_bytes(CONTENT)
    opened = []
    real_open = pathlib.Path.open
    monkeypatch.setattr(
        pathlib.Path, "open", lambda path, *a, **k: opened.append(path) or real_open(path, *a, **k)
    )

    result = run(version(uri.format(root=root)))

    assert result.status == "failed"
    assert "outside the configured ARTIFACT_ROOTS" in result.summary
    assert "actual_sha256" not in result.results
    assert opened == []


def test_the_spy_sees_a_file_that_is_read(root, monkeypatch):
    opened = []
    real_open = pathlib.Path.open
    monkeypatch.setattr(
        pathlib.Path, "open", lambda path, *a, **k: opened.append(path) or real_open(path, *a, **k)
    )
    assert run(version(f"file://{root}/model.bin")).status == "passed"
    assert opened == [root / "model.bin"]


def test_a_missing_local_artifact_is_an_error(root):
    result = run(version(f"file://{root}/gone.bin"))
    assert result.status == "error"


def test_remote_artifacts_pass_on_a_well_formed_digest_without_being_read(root):
    result = run(version("s3://bucket/model.bin"))
    assert result.status == "passed"
    assert result.results["verified_content"] is False


def test_a_malformed_digest_fails(root):
    assert run(version("s3://bucket/model.bin", sha="abc")).status == "failed"


def test_no_roots_means_no_local_file_is_read(settings, tmp_path):
    settings.ARTIFACT_ROOTS = []
    (tmp_path / "m.bin").write_bytes(CONTENT)
    assert run(version(f"file://{tmp_path}/m.bin")).status == "failed"
