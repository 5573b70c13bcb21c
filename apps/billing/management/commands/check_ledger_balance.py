"""`python manage.py check_ledger_balance`: the periodic ledger balance check, by hand."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from apps.billing.services import ledger_balance_check


class Command(BaseCommand):
    help = (
        "Set every budget's usage counter and the usage rollups against the ledger; print and record the "
        "differences. Exit status 1 when there are any."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        check = ledger_balance_check()
        for difference in check.differences:
            self.stdout.write("{where} {budget} {field}: found {found}, ledger {ledger}".format(**difference))
        if check.difference_count > len(check.differences):
            self.stdout.write(f"... and {check.difference_count - len(check.differences)} more")
        if check.difference_count:
            raise CommandError(
                f"ledger balance: {check.difference_count} differences in {check.budgets_checked} budgets", returncode=1
            )
        self.stdout.write(f"ledger balance: ok ({check.budgets_checked} budgets checked)")
