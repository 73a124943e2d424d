import sys

from django.core.management.base import BaseCommand, CommandError

from audits.verification import (
    Trust,
    VerificationInputError,
    load_checkpoints,
    load_json,
    read_public_key,
    verify_file,
)

NO_KEY = (
    "{what} is checked against a public key you trust: pass --public-key (the service "
    "publishes its own at GET /api/v1/audit/public-key/), or --trust-embedded-key to check "
    "it with the key it carries, which proves it unchanged since signing, not who signed it."
)
EMBEDDED = (
    "Integrity, not authorship: the signatures were checked with the keys the files carry "
    "(--trust-embedded-key). That shows the files unchanged since they were signed, not "
    "who signed them; pass --public-key to check that."
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
            action="append",
            default=[],
            help="A PEM public key whose signatures count (GET /api/v1/audit/public-key/); "
            "may repeat, for keys used before a rotation. Without --file, the service's own "
            "key (AUDIT_SIGNING_KEY) counts too.",
        )
        parser.add_argument(
            "--trust-embedded-key",
            action="store_true",
            help="With --file: check the manifest and checkpoints with the key each carries. "
            "This proves them unchanged since signing (integrity), not who signed them.",
        )

    def handle(
        self,
        *args,
        file=None,
        manifest=None,
        checkpoint=(),
        public_key=(),
        trust_embedded_key=False,
        **options,
    ):
        if manifest and not file:
            raise CommandError("--manifest goes with --file.")
        if trust_embedded_key and not file:
            raise CommandError(
                "--trust-embedded-key goes with --file: the stored checkpoints are checked "
                "against the service's own key."
            )
        if trust_embedded_key and public_key:
            raise CommandError("Give --public-key or --trust-embedded-key, not both.")
        try:
            checkpoints = load_checkpoints(checkpoint)
            pems = [read_public_key(path) for path in public_key]
            signed = load_json(manifest, "manifest") if manifest else None
            if file:
                if not pems and not trust_embedded_key and (signed is not None or checkpoints):
                    what = "The manifest" if signed is not None else "A checkpoint"
                    raise CommandError(NO_KEY.format(what=what))
                trust = Trust.embedded_keys() if trust_embedded_key else Trust.pinned(pems)
                report = self._verify_file(file, signed, trust, checkpoints)
                where = file
            else:
                # Only this form touches the database, so --file runs where none is configured.
                from audits.verification import verify_database

                report = verify_database(checkpoints=checkpoints, public_keys=pems)
                where = "the database"
        except VerificationInputError as exc:
            raise CommandError(str(exc)) from exc
        chain = report.chain
        if report.ok:
            self.stdout.write(
                f"OK: {chain.events_checked} events in {where}; "
                f"head seq {chain.head_seq}, hash {chain.head_hash}"
            )
            for finding in report.findings:
                self.stdout.write(f"  {finding.text}")
            if trust_embedded_key and (signed is not None or checkpoints):
                self.stdout.write(f"  {EMBEDDED}")
            return
        first_bad = report.first_bad_seq
        problems = "; ".join(report.problems())
        named = f"first bad seq {first_bad} in {where}" if first_bad else where
        self.stderr.write(
            f"TAMPERED: {named}: {problems} ({chain.events_checked} events verified before it)"
        )
        sys.exit(1)

    def _verify_file(self, path, manifest, trust, checkpoints):
        if path == "-":
            return verify_file(
                sys.stdin.buffer, manifest=manifest, trust=trust, checkpoints=checkpoints
            )
        try:
            with open(path, "rb") as handle:
                return verify_file(handle, manifest=manifest, trust=trust, checkpoints=checkpoints)
        except OSError as exc:
            raise CommandError(f"Cannot read {path}: {exc.strerror}") from exc
