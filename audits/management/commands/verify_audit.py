import sys

from django.core.management.base import BaseCommand, CommandError

from audits.verification import (
    VerificationInputError,
    load_checkpoints,
    load_json,
    read_public_key,
    verify_file,
)


class Command(BaseCommand):
    help = (
        "Verify the audit chain: the stored log and its signed checkpoints, or with --file "
        "an exported JSON Lines file (no database needed), with --manifest its signed "
        "manifest. Exit 0 when intact, 1 naming the first bad seq."
    )
    # An auditor verifies where the service's keys are not: the checks that stop the
    # service from starting without them do not apply to this command.
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("--file", help="An exported .jsonl file ('-' for standard input).")
        parser.add_argument(
            "--manifest", help="The export's signed manifest (JSON); checks digest and rows."
        )
        parser.add_argument(
            "--checkpoint",
            action="append",
            default=[],
            help="A signed checkpoint (JSON) kept outside the database; may repeat.",
        )
        parser.add_argument(
            "--public-key",
            help="The PEM public key to trust (GET /api/v1/audit/public-key/). Without it a "
            "--file's manifest and checkpoints are checked with the key they carry.",
        )

    def handle(self, *args, file=None, manifest=None, checkpoint=(), public_key=None, **options):
        if manifest and not file:
            raise CommandError("--manifest goes with --file.")
        try:
            checkpoints = load_checkpoints(checkpoint)
            key = read_public_key(public_key)
            signed = load_json(manifest, "manifest") if manifest else None
        except VerificationInputError as exc:
            raise CommandError(str(exc)) from exc
        if file:
            report = self._verify_file(file, signed, key, checkpoints)
            where = file
        else:
            # Only this form touches the database, so --file runs where none is configured.
            from audits.verification import verify_database

            report = verify_database(checkpoints=checkpoints, public_key_pem=key)
            where = "the database"
        chain = report.chain
        if report.ok:
            self.stdout.write(
                f"OK: {chain.events_checked} events in {where}; "
                f"head seq {chain.head_seq}, hash {chain.head_hash}"
            )
            for finding in report.findings:
                self.stdout.write(f"  {finding.text}")
            return
        first_bad = report.first_bad_seq
        problems = "; ".join(report.problems())
        named = f"first bad seq {first_bad} in {where}" if first_bad else where
        self.stderr.write(
            f"TAMPERED: {named}: {problems} ({chain.events_checked} events verified before it)"
        )
        sys.exit(1)

    def _verify_file(self, path, manifest, key, checkpoints):
        if path == "-":
            return verify_file(
                sys.stdin.buffer, manifest=manifest, public_key_pem=key, checkpoints=checkpoints
            )
        try:
            with open(path, "rb") as handle:
                return verify_file(
                    handle, manifest=manifest, public_key_pem=key, checkpoints=checkpoints
                )
        except OSError as exc:
            raise CommandError(f"Cannot read {path}: {exc.strerror}") from exc
