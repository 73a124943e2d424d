import contextlib
import hashlib
import os
import threading

import pytest

from governance.checks import integrity, validate_policy_checks
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


@pytest.fixture
def opened(monkeypatch):
    """Every name the gate opens: the spy that proves a refused path is never read."""
    names = []
    real_open = os.open

    def spy(path, *args, **kwargs):
        names.append(str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", spy)
    return names


@pytest.mark.parametrize(
    "uri",
    [
        "file:///etc/passwd",
        "file://{root}/../outside.bin",
        "file://{root}/sub/../../outside.bin",
        "file://{root}-sibling/model.bin",
    ],
)
def test_paths_outside_the_roots_are_refused_without_being_read(root, uri, opened):
    outside = root.parent / "outside.bin"
    outside.write_bytes(CONTENT)
    (root / "sub").mkdir()
    sibling = root.parent / f"{root.name}-sibling"
    sibling.mkdir()
    (sibling / "model.bin").write_bytes(CONTENT)

    result = run(version(uri.format(root=root)))

    assert result.status == "failed"
    assert "outside the configured ARTIFACT_ROOTS" in result.summary
    assert "actual_sha256" not in result.results
    assert opened == []


def test_the_spy_sees_a_file_that_is_read(root, opened):
    assert run(version(f"file://{root}/model.bin")).status == "passed"
    assert opened == [str(root), "model.bin"]


def test_a_file_in_a_folder_under_a_root_is_read(root):
    (root / "team" / "run-7").mkdir(parents=True)
    (root / "team" / "run-7" / "model.bin").write_bytes(CONTENT)
    result = run(version(f"file://{root}/team/run-7/model.bin"))
    assert result.status == "passed", result.summary
    assert result.results["actual_sha256"] == hashlib.sha256(CONTENT).hexdigest()


def test_a_root_that_is_itself_a_link_is_followed(root, settings):
    # A root is the administrator's configuration: only links below it are refused.
    link = root.parent / "roots-link"
    link.symlink_to(root)
    settings.ARTIFACT_ROOTS = [str(link)]
    assert run(version(f"file://{link}/model.bin")).status == "passed"
    assert run(version(f"file://{root}/model.bin")).status == "passed"


# What the server cannot read ends `unverified`, saying why, and is never read.


def assert_unverified(result, why: str) -> None:
    assert result.status == "unverified", result.summary
    assert why in result.summary, result.summary
    assert result.results["verified_content"] is False
    assert "actual_sha256" not in result.results


def run_bounded(v, seconds: float = 5.0):
    """Run the gate in a thread: a gate that blocks fails the test instead of hanging it."""
    outcome = {}
    worker = threading.Thread(target=lambda: outcome.update(result=run(v)), daemon=True)
    worker.start()
    worker.join(seconds)
    return outcome.get("result")


def test_a_fifo_is_unverified_without_waiting_for_a_writer(root):
    fifo = root / "model.bin.pipe"
    os.mkfifo(fifo)
    try:
        result = run_bounded(version(f"file://{fifo}"))
        assert result is not None, "the gate blocked opening a FIFO"
        assert_unverified(result, "is a FIFO")
    finally:
        # A gate blocked in open() would wait for a writer forever: be that writer.
        with contextlib.suppress(OSError):
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))


def test_a_link_to_a_valid_file_under_the_root_is_unverified_and_not_followed(root, opened):
    (root / "link.bin").symlink_to(root / "model.bin")
    result = run(version(f"file://{root}/link.bin"))
    assert_unverified(result, "is a symbolic link")
    assert f"{root}/link.bin" in result.summary
    assert "link.bin" not in opened and "model.bin" not in opened


def test_a_link_leading_out_of_the_root_is_unverified_and_not_followed(root, opened):
    outside = root.parent / "outside.bin"
    outside.write_bytes(CONTENT)
    (root / "link.bin").symlink_to(outside)
    assert_unverified(run(version(f"file://{root}/link.bin")), "is a symbolic link")
    assert "link.bin" not in opened and str(outside) not in opened


def test_a_linked_folder_inside_the_path_is_not_followed(root, opened):
    outside = root.parent / "elsewhere"
    outside.mkdir()
    (outside / "model.bin").write_bytes(CONTENT)
    (root / "team").symlink_to(outside)
    result = run(version(f"file://{root}/team/model.bin"))
    assert_unverified(result, f"{root}/team is a symbolic link")
    assert opened == [str(root)]


@pytest.mark.parametrize(
    "uri", ["s3://bucket/model.bin", "gs://bucket/model.bin", "https://example.com/m.bin"]
)
def test_remote_artifacts_are_unverified_without_being_read(root, uri, opened):
    scheme = uri.split(":", 1)[0]
    assert_unverified(run(version(uri)), f"does not read {scheme}:// artifacts")
    assert opened == []


def test_a_directory_is_unverified(root):
    (root / "saved_model").mkdir()
    assert_unverified(run(version(f"file://{root}/saved_model")), "is a directory")
    assert_unverified(run(version(f"file://{root}")), "is a directory")


def test_a_device_under_a_root_is_unverified_and_never_opened(settings, opened):
    settings.ARTIFACT_ROOTS = ["/dev"]
    assert_unverified(run(version("file:///dev/null")), "is a character device")
    assert opened == ["/dev"]


def test_a_file_over_the_size_limit_is_unverified_and_not_read(root, settings, opened):
    settings.INTEGRITY_MAX_BYTES = len(CONTENT) - 1
    result = run(version(f"file://{root}/model.bin"))
    assert_unverified(result, f"is {len(CONTENT)} bytes, more than INTEGRITY_MAX_BYTES")
    assert result.results["actual_size"] == len(CONTENT)
    settings.INTEGRITY_MAX_BYTES = len(CONTENT)
    assert run(version(f"file://{root}/model.bin")).status == "passed"


def test_a_file_over_the_size_limit_with_another_size_than_registered_fails(root, settings):
    settings.INTEGRITY_MAX_BYTES = 10
    result = run(version(f"file://{root}/model.bin", size=len(CONTENT) + 1))
    assert result.status == "failed"
    assert f"size is {len(CONTENT)} bytes, not {len(CONTENT) + 1}" in result.summary


def test_a_missing_local_artifact_is_an_error(root):
    result = run(version(f"file://{root}/gone.bin"))
    assert result.status == "error"


@pytest.mark.parametrize("uri", ["s3://bucket/model.bin", "file://{root}/model.bin"])
def test_a_malformed_digest_fails(root, uri):
    result = run(version(uri.format(root=root), sha="abc"))
    assert result.status == "failed"
    assert "not a SHA-256 hex digest" in result.summary


@pytest.mark.parametrize(
    ("given", "errors"),
    [
        ({}, set()),
        ({"require_verified": True}, set()),
        ({"require_verified": False}, set()),
        ({"require_verified": "yes"}, {"checks.integrity.require_verified"}),
        ({"require_verified": 1}, {"checks.integrity.require_verified"}),
        ({"require_verifed": True}, {"checks.integrity.require_verifed"}),
    ],
)
def test_require_verified_is_the_one_setting_and_a_boolean(given, errors):
    assert set(validate_policy_checks({"integrity": given})) == errors


def test_no_roots_means_no_local_file_is_read(settings, tmp_path):
    settings.ARTIFACT_ROOTS = []
    (tmp_path / "m.bin").write_bytes(CONTENT)
    assert run(version(f"file://{tmp_path}/m.bin")).status == "failed"
