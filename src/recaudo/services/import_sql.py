"""The set-based half of a debts import: a staging table and a few SQL statements.

Rows are streamed into a TEMP table (PostgreSQL `COPY`, SQLite `executemany` in
chunks) so that memory stays flat whatever the file size; then every decision is one
statement over the whole file: duplicates, the plan (add / update / unchanged /
conflict per row), customers, audit rows, updates, inserts and cancellations. The same
statements run on both engines; where their SQL differs, `ImportStore` says so.

Everything runs inside the caller's unit of work, so an import is one transaction.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from itertools import islice
from typing import Any

from sqlalchemy import bindparam, text

from recaudo.adapters.db.types import UTCDateTime
from recaudo.adapters.db.uow import UnitOfWork
from recaudo.services.import_rows import StageRow

STAGE_COLUMNS = (
    "row_number",
    "external_id",
    "id_type",
    "national_id",
    "name",
    "email",
    "phone",
    "amount_minor",
    "due_date",
    "issue_date",
    "concept",
    "col",
    "reason",
    "raw",
)
SQLITE_CHUNK = 5_000
SQLITE_TEMP_CACHE_KIB = -65_536  # negative: KiB, i.e. 64 MB at most
SQLITE_DEFAULT_CACHE_KIB = -2_000  # SQLite's own default, restored for the pooled connection
PG_WORK_MEM = "64MB"  # per sort or hash node of this transaction, on the server
IMPORT_LOCK_NAMESPACE = 0x52_49  # first key of the advisory lock that serialises imports
TEMP_TABLES = ("import_cancel", "import_customers", "import_plan", "import_stage")


@dataclass(frozen=True, slots=True)
class PlanCounts:
    added: int
    updated: int
    conflicts: int


@dataclass(frozen=True, slots=True)
class ImportContext:
    """What every statement of one import binds."""

    company_id: int
    import_id: int
    currency: str
    currency_scale: int
    actor: str
    now: datetime
    has_concept: bool
    has_issue_date: bool
    labels: dict[str, str]  # column key -> the file's header label, for issues


class ImportStore:
    def __init__(self, uow: UnitOfWork) -> None:
        self.uow = uow
        self.pg = uow.dialect == "postgresql"
        self._temp = " ON COMMIT DROP" if self.pg else ""
        self._json = "json_build_object" if self.pg else "json_object"
        self._same = "IS NOT DISTINCT FROM" if self.pg else "IS"
        self._differs = "IS DISTINCT FROM" if self.pg else "IS NOT"

    # ------------------------------------------------------------------ plumbing

    def _run(self, sql: str, params: dict[str, Any] | list[dict[str, Any]] | None = None) -> Any:
        params = params or {}
        statement = text(sql)
        if isinstance(params, dict) and "now" in params:
            statement = statement.bindparams(bindparam("now", type_=UTCDateTime()))
        return self.uow.session.execute(statement, params)

    def _bind(self, ctx: ImportContext) -> dict[str, Any]:
        return {"cid": ctx.company_id, "iid": ctx.import_id, "now": ctx.now, "actor": ctx.actor}

    def _driver(self) -> Any:
        return self.uow.session.connection().connection.driver_connection

    # ------------------------------------------------------------------ staging

    def begin(self, company_id: int) -> None:
        """Serialise imports of one company and size the transaction for bulk work.

        SQLite's BEGIN IMMEDIATE already serialises every writer. On PostgreSQL the
        default 4 MB `work_mem` spills each million-row hash join and sort to disk;
        `SET LOCAL` gives this one transaction more and ends with it.
        """
        if self.pg:
            self._run(
                "SELECT pg_advisory_xact_lock(:ns, CAST(:key AS integer))",
                {"ns": IMPORT_LOCK_NAMESPACE, "key": company_id % 2_147_483_647},
            )
            self._run(f"SET LOCAL work_mem = '{PG_WORK_MEM}'")

    def create_stage(self) -> None:
        self.drop_temp()
        if not self.pg:
            # SQLite keeps TEMP tables in a file behind a 2 MB page cache; a bounded
            # larger cache saves most spills of a million-row stage, memory stays flat.
            self._run(f"PRAGMA temp.cache_size = {SQLITE_TEMP_CACHE_KIB}")
        if self.pg:
            types = dict.fromkeys(STAGE_COLUMNS, "text")
            types.update(row_number="integer NOT NULL", amount_minor="bigint")
            types.update(due_date="date", issue_date="date")
        else:
            types = dict.fromkeys(STAGE_COLUMNS, "TEXT")
            # INTEGER PRIMARY KEY is SQLite's rowid: free to index, appended in order.
            types.update(row_number="INTEGER PRIMARY KEY", amount_minor="INTEGER")
        columns = ", ".join(f"{name} {kind}" for name, kind in types.items())
        self._run(f"CREATE TEMP TABLE import_stage ({columns}){self._temp}")

    def load(self, rows: Iterable[StageRow]) -> None:
        if self.pg:
            self._copy(rows)
        else:
            self._insert_chunks(rows)

    def _copy(self, rows: Iterable[StageRow]) -> None:
        names = ", ".join(STAGE_COLUMNS)
        with (
            self._driver().cursor() as cursor,
            cursor.copy(f"COPY import_stage ({names}) FROM STDIN") as copy,
        ):
            for row in rows:
                copy.write_row(row)

    def _insert_chunks(self, rows: Iterable[StageRow]) -> None:
        cursor = self._driver().cursor()
        marks = ", ".join("?" for _ in STAGE_COLUMNS)
        sql = f"INSERT INTO import_stage VALUES ({marks})"
        iterator = iter(rows)
        try:
            while chunk := list(islice(iterator, SQLITE_CHUNK)):
                cursor.executemany(sql, chunk)
        finally:
            cursor.close()

    def index_stage(self) -> None:
        self._run("CREATE INDEX import_stage_external ON import_stage (external_id)")
        if self.pg:
            self._run("CREATE UNIQUE INDEX import_stage_row ON import_stage (row_number)")
            # Temp tables are never auto-analysed; without statistics the planner
            # guesses a handful of rows and picks nested loops over a million.
            self._run("ANALYZE import_stage")

    def mark_duplicates(self, label: str) -> None:
        """Reject every repeat of a debt id after its first row, in one statement."""
        self._run(
            """
            UPDATE import_stage
            SET col = :label,
                reason = 'duplicate debt id, first at row ' || CAST(f.first_row AS TEXT)
            FROM (
                SELECT external_id, MIN(row_number) AS first_row
                FROM import_stage
                WHERE external_id IS NOT NULL
                GROUP BY external_id
                HAVING COUNT(*) > 1
            ) AS f
            WHERE import_stage.external_id = f.external_id
              AND import_stage.row_number > f.first_row
              AND import_stage.reason IS NULL
            """,
            {"label": label},
        )

    def rows_missing_raw(self, after: int, limit: int) -> list[int]:
        """Rejected in SQL (duplicates), so their original cells are not staged yet."""
        result = self._run(
            """
            SELECT row_number FROM import_stage
            WHERE reason IS NOT NULL AND raw IS NULL AND row_number > :after
            ORDER BY row_number LIMIT :limit
            """,
            {"after": after, "limit": limit},
        )
        return [int(n) for n in result.scalars()]

    def set_raw(self, values: list[tuple[int, str]]) -> None:
        if values:
            self._run(
                "UPDATE import_stage SET raw = :raw WHERE row_number = :n",
                [{"n": n, "raw": raw} for n, raw in values],
            )

    def stage_counts(self) -> tuple[int, int]:
        total, rejected = self._run("SELECT COUNT(*), COUNT(reason) FROM import_stage").one()
        return int(total), int(rejected)

    def record_rejected(self, import_id: int) -> None:
        self._run(
            """
            INSERT INTO import_issues
                (import_id, kind, row_number, "column", debt_external_id, reason, raw)
            SELECT :iid, 'rejected', row_number, col, external_id, reason, raw
            FROM import_stage WHERE reason IS NOT NULL ORDER BY row_number
            """,
            {"iid": import_id},
        )

    def drop_temp(self) -> None:
        for name in TEMP_TABLES:
            self._run(f"DROP TABLE IF EXISTS {'pg_temp' if self.pg else 'temp'}.{name}")
        if not self.pg:
            self._run(f"PRAGMA temp.cache_size = {SQLITE_DEFAULT_CACHE_KIB}")

    # ------------------------------------------------------------------ the plan

    def plan(self, ctx: ImportContext) -> None:
        """Classify every valid row against the company's debts, in one statement.

        `unchanged` rows are only counted (most of a daily file), never materialised.
        A paid or written-off debt, a debt of another customer and a change to a debt
        in payment are conflicts; `check_paid` adds amounts below what is already paid.
        """
        same = ["s.amount_minor = d.amount_minor", "s.due_date = d.due_date"]
        if ctx.has_issue_date:
            same.append(f"s.issue_date {self._same} d.issue_date")
        if ctx.has_concept:
            same.append(f"s.concept {self._same} d.concept")
        self._run(
            f"""
            CREATE TEMP TABLE import_plan{self._temp} AS
            SELECT k.*, CAST(NULL AS BIGINT) AS paid, 0 AS raced
            FROM (
                SELECT j.*,
                    CASE
                        WHEN j.debt_id IS NULL THEN 'add'
                        WHEN j.old_status IN ('paid', 'written_off') THEN 'conflict'
                        WHEN j.other_customer = 1 THEN 'conflict'
                        WHEN j.old_status IN ('open', 'in_payment') AND j.same = 1
                            THEN 'unchanged'
                        WHEN j.old_status IN ('open', 'cancelled') THEN 'update'
                        ELSE 'conflict'
                    END AS action
                FROM (
                    SELECT s.row_number, s.external_id, s.id_type, s.national_id,
                        s.amount_minor, s.due_date, s.issue_date, s.concept,
                        d.id AS debt_id, d.customer_id AS old_customer,
                        d.status AS old_status, d.amount_minor AS old_amount,
                        d.due_date AS old_due, d.issue_date AS old_issue,
                        d.concept AS old_concept,
                        CASE WHEN c.id_type <> s.id_type OR c.national_id <> s.national_id
                            THEN 1 ELSE 0 END AS other_customer,
                        CASE WHEN {" AND ".join(same)} THEN 1 ELSE 0 END AS same
                    FROM import_stage s
                    LEFT JOIN debts d
                        ON d.company_id = :cid AND d.external_id = s.external_id
                    LEFT JOIN customers c ON c.id = d.customer_id
                    WHERE s.reason IS NULL
                ) AS j
            ) AS k
            WHERE k.action <> 'unchanged'
            """,
            {"cid": ctx.company_id},
        )
        self._run("CREATE INDEX import_plan_row ON import_plan (row_number)")
        if self.pg:
            self._run("ANALYZE import_plan")

    def find_absent(self, ctx: ImportContext) -> None:
        """Replace mode: the open debts the file does not name, to be cancelled.

        A row rejected for another reason still names its debt, so a typo in one cell
        never cancels the debt it was about. `in_payment` debts are not open: they stay.
        Nor are the debts Recaudo itself made: a payment plan's installments and the
        condonation a broken plan reinstated are never in the company's own file.
        """
        kind = "bigint" if self.pg else "INTEGER PRIMARY KEY"
        self._run(f"CREATE TEMP TABLE import_cancel (id {kind}){self._temp}")
        self._run(
            """
            INSERT INTO import_cancel (id)
            SELECT id FROM debts
            WHERE company_id = :cid AND status = 'open' AND NOT EXISTS (
                SELECT 1 FROM import_stage s WHERE s.external_id = debts.external_id)
            AND NOT EXISTS (
                SELECT 1 FROM negotiation_installments i WHERE i.debt_id = debts.id)
            AND NOT EXISTS (
                SELECT 1 FROM negotiations n WHERE n.reinstated_debt_id = debts.id)
            """,
            {"cid": ctx.company_id},
        )

    def lock_and_recheck(self, replace: bool) -> None:
        """PostgreSQL: lock every debt the import will write, then drop what moved.

        The plan was read from a snapshot; a payment may have committed since. Locking
        in primary-key order (the order payments lock in) cannot deadlock with them,
        and once locked nothing else can change these debts until the import commits.
        A debt that changed in between is left alone and reported as a conflict. On
        SQLite writers are serialised (BEGIN IMMEDIATE), so nothing can have moved.
        """
        if not self.pg:
            return
        cancels = "OR d.id IN (SELECT id FROM import_cancel)" if replace else ""
        self._run(
            f"""
            SELECT COUNT(*) FROM (
                SELECT d.id FROM debts d
                WHERE d.id IN (SELECT debt_id FROM import_plan WHERE action = 'update')
                    {cancels}
                ORDER BY d.id FOR UPDATE OF d
            ) AS locked
            """
        )
        self._run(
            """
            UPDATE import_plan SET action = 'conflict', raced = 1
            FROM debts d
            WHERE d.id = import_plan.debt_id AND import_plan.action = 'update' AND (
                d.status <> import_plan.old_status
                OR d.customer_id <> import_plan.old_customer
                OR d.amount_minor <> import_plan.old_amount
                OR d.due_date <> import_plan.old_due
                OR d.issue_date IS DISTINCT FROM import_plan.old_issue
                OR d.concept IS DISTINCT FROM import_plan.old_concept)
            """
        )
        if replace:
            self._run(
                "DELETE FROM import_cancel USING debts d "
                "WHERE d.id = import_cancel.id AND d.status <> 'open'"
            )

    def check_paid(self) -> None:
        """A new amount below what is already paid would leave the debt overpaid.

        Read after the locks: every payment to these debts is either visible now or
        waits for the import to commit.
        """
        self._run(
            """
            UPDATE import_plan SET paid = COALESCE((
                SELECT SUM(a.amount_minor) FROM allocations a
                JOIN payments p ON p.id = a.payment_id
                WHERE a.debt_id = import_plan.debt_id AND p.status = 'applied'), 0)
            WHERE action = 'update'
            """
        )
        self._run(
            "UPDATE import_plan SET action = 'conflict' "
            "WHERE action = 'update' AND amount_minor < paid"
        )

    def plan_counts(self) -> PlanCounts:
        counts = dict(self._run("SELECT action, COUNT(*) FROM import_plan GROUP BY action").all())
        return PlanCounts(
            added=int(counts.get("add", 0)),
            updated=int(counts.get("update", 0)),
            conflicts=int(counts.get("conflict", 0)),
        )

    def record_conflicts(self, ctx: ImportContext) -> None:
        paid, amount = self._decimal("paid", ctx), self._decimal("amount_minor", ctx)
        self._run(
            f"""
            INSERT INTO import_issues
                (import_id, kind, row_number, "column", debt_external_id, reason, raw)
            SELECT :iid, 'conflict', row_number,
                CASE
                    WHEN raced = 1 THEN :ext_label
                    WHEN old_status IN ('paid', 'written_off') THEN :ext_label
                    WHEN other_customer = 1 THEN :nid_label
                    WHEN paid IS NOT NULL THEN :amount_label
                    ELSE :ext_label
                END,
                external_id,
                CASE
                    WHEN raced = 1 THEN
                        'debt changed while the file was being imported; import it again'
                    WHEN old_status IN ('paid', 'written_off')
                        THEN 'debt is ' || REPLACE(old_status, '_', ' ')
                            || ': an import never changes it'
                    WHEN other_customer = 1 THEN 'debt belongs to another customer'
                    WHEN paid IS NOT NULL
                        THEN 'amount ' || {amount} || ' is below the ' || {paid}
                            || ' already paid'
                    ELSE 'debt is ' || REPLACE(old_status, '_', ' ')
                        || ': an import never changes it'
                END,
                NULL
            FROM import_plan WHERE action = 'conflict' ORDER BY row_number
            """,
            {
                "iid": ctx.import_id,
                "ext_label": ctx.labels["external_id"],
                "nid_label": ctx.labels["national_id"],
                "amount_label": ctx.labels["amount"],
            },
        )

    def _decimal(self, column: str, ctx: ImportContext) -> str:
        """SQL text of an amount in minor units as a decimal string (`1234.50`)."""
        scale = ctx.currency_scale
        if scale == 0:
            return f"CAST({column} AS TEXT)"
        factor = 10**scale
        units = f"CAST({column} / {factor} AS TEXT)"
        cents = f"CAST({column} % {factor} AS TEXT)"
        if self.pg:
            return f"({units} || '.' || LPAD({cents}, {scale}, '0'))"
        return f"({units} || '.' || SUBSTR('{'0' * scale}' || {cents}, -{scale}))"

    # ------------------------------------------------------------------ customers

    def apply_customers(self, ctx: ImportContext) -> int:
        """Create missing customers, update changed ones; the last row of each wins.

        Rows in conflict change nothing, not even their customer. Returns how many
        customers were created.
        """
        self._run(
            f"""
            CREATE TEMP TABLE import_customers{self._temp} AS
            SELECT s.id_type, s.national_id, s.name, s.email, s.phone,
                c.id AS customer_id, c.name AS old_name, c.email AS old_email,
                c.phone AS old_phone
            FROM (
                SELECT MAX(s.row_number) AS last_row
                FROM import_stage s
                WHERE s.reason IS NULL AND s.row_number NOT IN (
                    SELECT row_number FROM import_plan WHERE action = 'conflict')
                GROUP BY s.id_type, s.national_id
            ) AS l
            JOIN import_stage s ON s.row_number = l.last_row
            LEFT JOIN customers c ON c.company_id = :cid
                AND c.id_type = s.id_type AND c.national_id = s.national_id
            """,
            {"cid": ctx.company_id},
        )
        added = self._run(
            """
            INSERT INTO customers
                (company_id, id_type, national_id, name, email, phone, created_at, updated_at)
            SELECT :cid, id_type, national_id, name, email, phone, :now, :now
            FROM import_customers WHERE customer_id IS NULL
            ON CONFLICT (company_id, id_type, national_id) DO NOTHING
            """,
            {"cid": ctx.company_id, "now": ctx.now},
        ).rowcount
        changed = (
            f"i.customer_id IS NOT NULL AND (i.name <> i.old_name"
            f" OR (i.email IS NOT NULL AND i.email {self._differs} i.old_email)"
            f" OR (i.phone IS NOT NULL AND i.phone {self._differs} i.old_phone))"
        )
        j = self._json
        self._run(
            f"""
            INSERT INTO audit_events
                (company_id, occurred_at, actor, action, entity_type, entity_id, before, after)
            SELECT :cid, :now, :actor, 'customer.updated', 'customer',
                CAST(i.customer_id AS TEXT),
                {j}('name', i.old_name, 'email', i.old_email, 'phone', i.old_phone),
                {j}('name', i.name, 'email', COALESCE(i.email, i.old_email),
                    'phone', COALESCE(i.phone, i.old_phone))
            FROM import_customers i WHERE {changed}
            """,
            self._bind(ctx),
        )
        self._run(
            f"""
            UPDATE customers SET name = i.name,
                email = COALESCE(i.email, customers.email),
                phone = COALESCE(i.phone, customers.phone),
                updated_at = :now
            FROM import_customers i
            WHERE customers.id = i.customer_id AND {changed}
            """,
            {"now": ctx.now},
        )
        return int(added)

    # ------------------------------------------------------------------ debts

    def apply_updates(self, ctx: ImportContext) -> None:
        """Audit (before/after) then update changed and reopened debts."""
        status = "CASE WHEN p.paid >= p.amount_minor THEN 'paid' ELSE 'open' END"
        old = ["'amount_minor', p.old_amount", "'due_date', p.old_due"]
        new = ["'amount_minor', p.amount_minor", "'due_date', p.due_date"]
        sets = ["amount_minor = p.amount_minor", "due_date = p.due_date"]
        if ctx.has_issue_date:
            old.append("'issue_date', p.old_issue")
            new.append("'issue_date', p.issue_date")
            sets.append("issue_date = p.issue_date")
        if ctx.has_concept:
            old.append("'concept', p.old_concept")
            new.append("'concept', p.concept")
            sets.append("concept = p.concept")
        old.append("'status', p.old_status")
        new.append(f"'status', {status}")
        self._run(
            f"""
            INSERT INTO audit_events
                (company_id, occurred_at, actor, action, entity_type, entity_id, before, after)
            SELECT :cid, :now, :actor, 'debt.updated', 'debt', CAST(p.debt_id AS TEXT),
                {self._json}({", ".join(old)}), {self._json}({", ".join(new)})
            FROM import_plan p WHERE p.action = 'update' ORDER BY p.row_number
            """,
            self._bind(ctx),
        )
        self._run(
            f"""
            UPDATE debts SET {", ".join(sets)}, status = {status},
                last_import_id = :iid, updated_at = :now
            FROM import_plan p
            WHERE debts.id = p.debt_id AND p.action = 'update'
            """,
            {"iid": ctx.import_id, "now": ctx.now},
        )

    def apply_additions(self, ctx: ImportContext) -> None:
        self._run(
            """
            INSERT INTO debts (company_id, customer_id, external_id, concept, amount_minor,
                currency, issue_date, due_date, status, last_import_id, created_at, updated_at)
            SELECT :cid, c.id, p.external_id, p.concept, p.amount_minor, :currency,
                p.issue_date, p.due_date, 'open', :iid, :now, :now
            FROM import_plan p
            JOIN customers c ON c.company_id = :cid
                AND c.id_type = p.id_type AND c.national_id = p.national_id
            WHERE p.action = 'add'
            ORDER BY p.row_number
            """,
            {"cid": ctx.company_id, "iid": ctx.import_id, "now": ctx.now, "currency": ctx.currency},
        )

    def apply_cancellations(self, ctx: ImportContext) -> int:
        """Audit (before/after) then cancel the debts `find_absent` chose."""
        j = self._json
        self._run(
            f"""
            INSERT INTO audit_events
                (company_id, occurred_at, actor, action, entity_type, entity_id, before, after)
            SELECT :cid, :now, :actor, 'debt.cancelled', 'debt', CAST(d.id AS TEXT),
                {j}('external_id', d.external_id, 'amount_minor', d.amount_minor,
                    'status', d.status),
                {j}('external_id', d.external_id, 'amount_minor', d.amount_minor,
                    'status', 'cancelled')
            FROM debts d JOIN import_cancel c ON c.id = d.id ORDER BY d.id
            """,
            self._bind(ctx),
        )
        result = self._run(
            """
            UPDATE debts SET status = 'cancelled', last_import_id = :iid, updated_at = :now
            FROM import_cancel c WHERE debts.id = c.id
            """,
            {"iid": ctx.import_id, "now": ctx.now},
        )
        return int(result.rowcount)
