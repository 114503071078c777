"""Load NCI's CTCAE v5.0 spreadsheet (CSV or XLSX) as a version of the CTCAE code list.

    manage.py load_ctcae FILE --user USERNAME [--version 5.0]

The user must be an administrator or data manager: the load is audited under their name.
A version is loaded once; a bad file is refused whole (every problem with its row number)
and nothing is written.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from core.audit import system_actor
from core.models import User
from core.refusals import Refusal
from crf.codelists import code_list_load, read_ctcae_file

LIST_CODE = "ctcae_v5"


class Command(BaseCommand):
    help = "Load NCI's CTCAE spreadsheet (CSV or XLSX) as a new version of the CTCAE code list."

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        # ``--version`` is the code list's version here, not Django's own version flag.
        return super().create_parser(prog_name, subcommand, conflict_handler="resolve", **kwargs)

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="NCI's CTCAE v5.0 spreadsheet (.csv or .xlsx)")
        parser.add_argument(
            "--version",
            dest="list_version",
            default="5.0",
            help="the version these terms are loaded as (default 5.0)",
        )
        parser.add_argument(
            "--user",
            required=True,
            help="username of the administrator or data manager who loads it (audited)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        path = Path(options["file"])
        username = options["user"]
        version = options["list_version"]
        user = User.objects.filter(username=username, is_active=True).first()
        if user is None:
            raise CommandError(f"No active user {username!r}.")
        try:
            sheet = read_ctcae_file(path)
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            with system_actor("load_ctcae", user=user.pk, username=user.get_username()):
                code_list = code_list_load(
                    by=user,
                    code=LIST_CODE,
                    version=version,
                    rows=sheet.rows,
                    labels=sheet.labels,
                    source=(
                        f"NCI CTCAE v{version} spreadsheet {path.name} (sha256 {digest}), "
                        f"loaded with manage.py load_ctcae"
                    ),
                )
        except Refusal as refusal:
            raise CommandError("\n".join(refusal.messages)) from None
        self.stdout.write(
            f"Loaded {code_list.terms.count()} terms as {LIST_CODE} {code_list.version}; "
            "it is now the current version."
        )
