"""The `recaudo` command.

`main` holds the application object, the shared plumbing (errors, output, opening the
container) and the foundation's commands; each other module adds one group of commands
to `main.app` when it is imported here.
"""

from recaudo.cli import main as _main
from recaudo.cli.main import app, worker_app

__all__ = ["app", "worker_app"]

from recaudo.cli import (
    checkout,  # noqa: F401
    commitments,  # noqa: F401
    contract_client,  # noqa: F401
    coupons,  # noqa: F401
    delivery,  # noqa: F401
    exchange,  # noqa: F401
    layout,  # noqa: F401
    negotiation,  # noqa: F401
    reconcile,  # noqa: F401
    remittance,  # noqa: F401
    settlement,  # noqa: F401
    users,  # noqa: F401
)

del _main
