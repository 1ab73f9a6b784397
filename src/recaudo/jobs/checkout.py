"""Checkout jobs: expire what outlived its service's timeout, push confirmations."""

from __future__ import annotations

from recaudo.adapters.payment_provider import configured_provider
from recaudo.adapters.webhooks import HttpSender
from recaudo.bootstrap import Container
from recaudo.jobs.runner import PeriodicJob
from recaudo.services import checkout_payments


def expire_checkout(container: Container) -> int:
    """CREATED past the timeout -> EXPIRED; PENDING -> the provider's answer, or FAILED."""
    report = checkout_payments.expire_due(
        container.uow(),
        configured_provider(container.settings.checkout_provider_url),
        clock=container.clock,
    )
    return report.expired + report.settled + report.failed


def push_confirmations(container: Container) -> int:
    """Signed POSTs of final states to the companies' confirmation URLs (with retries),
    and the receipt e-mails of approved tickets."""
    sender = HttpSender(allow_private=container.settings.webhook_allow_private_targets)
    report = checkout_payments.deliver_confirmations(container.uow(), sender, clock=container.clock)
    receipts = checkout_payments.send_receipts(container.uow(), container.settings)
    return report.sent + report.retrying + report.failed + receipts.sent + receipts.failed


CHECKOUT_EXPIRY_JOB = PeriodicJob("checkout_expiry", 30.0, expire_checkout)
CHECKOUT_CONFIRMATION_JOB = PeriodicJob("checkout_confirmations", 5.0, push_confirmations)
