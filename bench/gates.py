"""Time the validation and fairness gates on 10k, 100k and 1M-row evaluation sets.

    .venv/bin/python bench/gates.py [--sizes 10000,100000,1000000]

Each measurement runs in a fresh process. Seconds are timed in one process; memory
in another, under tracemalloc (which sees NumPy's and pandas' buffers): the peak of
what the check itself allocated, and the process's peak RSS. The data is uploaded through the
registry's service into a throw-away SQLite database, and each gate runs as the
default production policy configures it (validation compares with a production
version's figures on its own evaluation set). In the same run, fairlearn's
MetricFrame alone is timed on the same, already loaded data: the fairness gate
(which also reads the CSV) must take no more than twice as long on 1M rows.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def setup_django():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()


def child(kind: str, evaluation_id: int, traced: bool) -> None:
    """One measurement, printed as JSON."""
    import tracemalloc

    setup_django()
    from governance.checks import fairness, validation
    from governance.services.policies import PRODUCTION_CHECKS
    from registry.evaluation import load_frame
    from registry.models import EvaluationData

    evaluation = EvaluationData.objects.select_related("version__model").get(pk=evaluation_id)
    if kind == "metricframe":
        frame = load_frame(evaluation)
        y_true = frame[evaluation.label_column].to_numpy()
        y_pred = frame[evaluation.prediction_column].to_numpy()
        if traced:
            tracemalloc.start()
        start = time.perf_counter()
        for feature in evaluation.sensitive_features:
            fairness.metric_frame(y_true, y_pred, frame[feature]).by_group  # noqa: B018 - the work timed
        seconds = time.perf_counter() - start
    else:
        gate = {"validation": validation, "fairness": fairness}[kind]
        if traced:
            tracemalloc.start()
        start = time.perf_counter()
        result = gate.run(
            version=evaluation.version, evaluation=evaluation, settings=PRODUCTION_CHECKS[kind]
        )
        seconds = time.perf_counter() - start
        assert result.status in ("passed", "failed"), result.summary
    allocated = tracemalloc.get_traced_memory()[1] / 1024**2 if traced else None
    print(json.dumps({"seconds": seconds, "rss_mb": rss_mb(), "allocated_mb": allocated}))


def measure(kind: str, evaluation_id: int, env: dict) -> dict:
    def run(*extra):
        out = subprocess.run(
            [sys.executable, __file__, "--child", kind, str(evaluation_id), *extra],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
        )
        return json.loads(out.stdout.strip().splitlines()[-1])

    timed, traced = run(), run("--traced")
    return {
        "seconds": timed["seconds"],
        "rss_mb": traced["rss_mb"],
        "allocated_mb": traced["allocated_mb"],
    }


def prepare(sizes: list[int], env: dict) -> dict[int, int]:
    """Register a model with a production version and one version per size, each with
    its evaluation set; return size -> evaluation id. The production version gets there
    as any does: a request under the default policy, its checks, a reviewer's approval."""
    os.environ.update(env)
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], env=env, check=True, cwd=ROOT)
    setup_django()
    import hashlib

    from django.core.files.uploadedfile import SimpleUploadedFile

    from audits.context import audit_context
    from governance.services import (
        policies_setup,
        promotion_request_approve,
        promotion_request_submit,
        role_grant,
        roles_setup,
        user_upsert,
    )
    from registry.evaluation import EvaluationSpec
    from registry.registration import model_version_register
    from registry.services import evaluation_upload, registered_model_create
    from tests.evaluation_sets import binary_set, to_csv

    with audit_context():
        roles_setup(actor=None)
        policies_setup(actor=None)
        ci, _ = user_upsert(actor=None, username="bench-ci")
        role_grant(actor=None, user=ci, role="ci")
        reviewer, _ = user_upsert(actor=None, username="bench-reviewer")
        role_grant(actor=None, user=reviewer, role="reviewer")
        model = registered_model_create(actor=ci, name="bench")
        ids = {}
        for number, size in enumerate([sizes[0], *sizes]):
            version, _ = model_version_register(
                actor=ci,
                model=model,
                artifact_uri=f"s3://bench/{number}",
                artifact_sha256=hashlib.sha256(str(number).encode()).hexdigest(),
            )
            frame = binary_set(rows=size, seed=number)
            upload = SimpleUploadedFile("eval.csv", to_csv(frame), content_type="text/csv")
            evaluation = evaluation_upload(
                actor=ci,
                version=version,
                upload=upload,
                spec=EvaluationSpec(score_column="score", sensitive_features=["group", "sex"]),
            )
            if number == 0:
                # The production version the regression rule compares with.
                request = promotion_request_submit(
                    actor=ci, model=model, version=version.version, target_stage="production"
                )
                promotion_request_approve(actor=reviewer, request_id=request.pk)
            else:
                ids[size] = evaluation.pk
    return ids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument(
        "--child", nargs=2, metavar=("KIND", "EVALUATION_ID"), help=argparse.SUPPRESS
    )
    parser.add_argument("--traced", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], int(args.child[1]), args.traced)
        return

    from bench.common import production_keys

    sizes = [int(s) for s in args.sizes.split(",")]
    work = Path(tempfile.mkdtemp(prefix="modelgov-gates-"))
    env = {
        **os.environ,
        **production_keys(),
        "DATABASE_URL": f"sqlite:///{work / 'bench.sqlite3'}",
        "MEDIA_ROOT": str(work / "media"),
        "EVALUATION_MAX_BYTES": str(2 * 1024**3),
        "DJANGO_SETTINGS_MODULE": "config.settings",
    }
    env.pop("REDIS_URL", None)
    env.pop("CELERY_BROKER_URL", None)
    print(f"preparing evaluation sets in {work} ...", flush=True)
    ids = prepare(sizes, env)

    print(f"\n{'rows':>9} {'check':<12} {'seconds':>9} {'allocated MB':>13} {'peak RSS MB':>12}")
    ratio = None
    for size in sizes:
        for kind in ("validation", "fairness", "metricframe"):
            if kind == "metricframe" and size != sizes[-1]:
                continue
            figures = measure(kind, ids[size], env)
            label = "MetricFrame" if kind == "metricframe" else kind
            print(
                f"{size:>9} {label:<12} {figures['seconds']:>9.3f} "
                f"{figures['allocated_mb']:>13.1f} {figures['rss_mb']:>12.1f}",
                flush=True,
            )
            if size == sizes[-1]:
                if kind == "fairness":
                    fairness_seconds = figures["seconds"]
                elif kind == "metricframe":
                    ratio = fairness_seconds / figures["seconds"]
    verdict = "meets" if ratio is not None and ratio <= 2 else "misses"
    print(
        f"\nfairness gate / MetricFrame alone on {sizes[-1]} rows: {ratio:.2f}x "
        f"({verdict} the 2x target)"
    )


if __name__ == "__main__":
    main()
