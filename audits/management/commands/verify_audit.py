import sys

from django.core.management.base import BaseCommand, CommandError

from audits.chain import iter_jsonl, verify_events


class Command(BaseCommand):
    help = (
        "Verify the audit chain: the stored log, or with --file an unfiltered JSON Lines "
        "export (no database needed). Exit 0 when intact, 1 naming the first bad seq."
    )

    def add_arguments(self, parser):
        parser.add_argument("--file", help="An exported .jsonl file ('-' for standard input).")

    def handle(self, *args, file=None, **options):
        if file:
            result = self._verify_file(file)
            where = file
        else:
            from audits.selectors import verify_stored_chain

            result = verify_stored_chain()
            where = "the database"
        if result.ok:
            self.stdout.write(
                f"OK: {result.events_checked} events in {where}; "
                f"head seq {result.head_seq}, hash {result.head_hash}"
            )
            return
        self.stderr.write(
            f"TAMPERED: first bad seq {result.first_bad_seq} in {where}: {result.reason} "
            f"({result.events_checked} events verified before it)"
        )
        sys.exit(1)

    def _verify_file(self, path: str):
        if path == "-":
            return verify_events(iter_jsonl(sys.stdin))
        try:
            with open(path, encoding="utf-8", errors="replace") as handle:
                return verify_events(iter_jsonl(handle))
        except OSError as exc:
            raise CommandError(f"Cannot read {path}: {exc.strerror}") from exc
