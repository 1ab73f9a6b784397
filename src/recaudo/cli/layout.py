"""`recaudo layout`: list, show and try fixed-width layouts on any file.

`layout read` is how a company checks the layout file it wrote from its bank's document
against a real file: every record, every control check, every error with its columns.
No database is needed.
"""

from __future__ import annotations

import json
from datetime import date, time
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from recaudo.cli.main import app, err, fail, handles_errors, out, print_table
from recaudo.formats import fixedwidth
from recaudo.formats.fixedwidth import Layout, LayoutError, Record

layout_app = typer.Typer(help="Fixed-width file layouts: list, show, read a file with one.")
app.add_typer(layout_app, name="layout")

LayoutArg = Annotated[str, typer.Argument(help="A shipped layout's name or a .toml/.yaml file.")]


def _load(name: str) -> Layout:
    try:
        return fixedwidth.load_layout(name)
    except LayoutError as exc:
        fail(str(exc), 2)


def _plain(value: object) -> object:
    if isinstance(value, date | time):
        return value.isoformat()
    return value


@layout_app.command("list")
@handles_errors
def layout_list() -> None:
    """The layouts shipped with Recaudo."""
    table = Table("name", "description")
    for name in fixedwidth.available_layouts():
        table.add_row(name, escape(fixedwidth.load_layout(name).description))
    print_table(table)


@layout_app.command("show")
@handles_errors
def layout_show(layout: LayoutArg) -> None:
    """Record types, fields and control checks of a layout."""
    spec = _load(layout)
    newline = "CRLF" if spec.newline == "\r\n" else "LF"
    out.print(
        f"[bold]{escape(spec.name)}[/]: {escape(spec.description)}\n"
        f"encoding {spec.encoding}, newline {newline}, {spec.record_length} characters per "
        f"record, record type at columns {spec.type_start}-"
        f"{spec.type_start + spec.type_length - 1}"
    )
    for record in spec.records.values():
        after = ", ".join("start" if a == fixedwidth.START else a for a in record.after)
        table = Table(
            "columns",
            "len",
            "type",
            "pad",
            "attribute",
            "title",
            "notes",
            title=f"{record.kind} — {record.title} (code {record.code!r}; after: {after or 'any'})",
            title_justify="left",
        )
        for f in record.fields:
            notes = []
            if f.fixed:
                notes.append(f"fixed {f.value!r}" if f.value else "blanks")
            if f.null:
                notes.append("Null")
            if f.decimals:
                notes.append(f"{f.decimals} decimals")
            if f.mask:
                notes.append(f.mask)
            if f.aliases:
                notes.append("also " + ", ".join(f.aliases))
            table.add_row(
                f"{f.start}-{f.end}",
                str(f.length),
                f.type,
                f.pad if f.type in ("Alfa", "Char", "Num") else "",
                "" if f.fixed else escape(f.source),
                escape(f.title),
                escape("; ".join(notes)),
            )
        print_table(table)
    if spec.checks:
        out.print("[bold]Control checks[/]")
        for check in spec.checks:
            out.print(f"  {escape(check.name)} (per {check.scope})")


@layout_app.command("read")
@handles_errors
def layout_read(
    file: Annotated[
        Path, typer.Argument(help="The file to read.", exists=True, dir_okay=False, readable=True)
    ],
    layout: Annotated[
        str, typer.Option("--layout", help="A shipped layout's name or a .toml/.yaml file.")
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
    limit: Annotated[
        int, typer.Option(help="Records printed at most (0: all). Errors are always all listed.")
    ] = 50,
    records: Annotated[
        bool, typer.Option("--records/--no-records", help="Print the records too.")
    ] = True,
) -> None:
    """Parse FILE with a layout: its records, control checks and every error.

    Exits 0 when the file conforms, 1 when it has errors or a control check fails,
    2 when the layout itself is invalid.
    """
    spec = _load(layout)
    checker = spec.checker()
    shown: list[tuple[int, Record]] = []
    with file.open("rb") as stream:
        for parsed in spec.read(stream):
            checker.feed(parsed)
            if records and parsed.record is not None and (limit == 0 or len(shown) < limit):
                shown.append((parsed.line_no, parsed.record))
    report = checker.finish()
    if as_json:
        document = report.as_dict()
        document["file"] = file.name
        if records:
            document["records"] = [
                {
                    "line": line_no,
                    "kind": record.kind,
                    "values": {k: _plain(v) for k, v in record.values.items()},
                }
                for line_no, record in shown
            ]
        out.print_json(json.dumps(document, ensure_ascii=False))
    else:
        _print_report(spec, file, report, shown)
    if not report.ok:
        raise typer.Exit(1)


def _print_report(
    spec: Layout, file: Path, report: fixedwidth.ReadReport, shown: list[tuple[int, Record]]
) -> None:
    counts = ", ".join(f"{n} × {kind}" for kind, n in report.counts.items()) or "no records"
    out.print(f"{escape(file.name)} read with {escape(spec.name)}: {report.lines} lines ({counts})")
    by_kind: dict[str, list[tuple[int, Record]]] = {}
    for line_no, record in shown:
        by_kind.setdefault(record.kind, []).append((line_no, record))
    for kind, rows in by_kind.items():
        columns = spec.columns(kind)
        table = Table("line", *(f.source for f in columns), title=kind, title_justify="left")
        for line_no, record in rows:
            cells = [record.values.get(f.source) for f in columns]
            table.add_row(str(line_no), *("" if c is None else escape(str(c)) for c in cells))
        print_table(table)
    if report.checks:
        checks = Table("check", "line", "file says", "records give", "", title="Control checks")
        for check in report.checks:
            verdict = "[green]ok[/]" if check.ok else "[bold red]MISMATCH[/]"
            checks.add_row(
                escape(check.name),
                str(check.line_no),
                str(check.found),
                str(check.expected),
                verdict,
            )
        print_table(checks)
    if report.error_count:
        errors = Table("line", "record", "field", "columns", "error", title="Errors")
        for e in report.errors:
            errors.add_row(
                str(e.line_no),
                e.record or "",
                e.field or "",
                f"{e.start}-{e.end}" if e.start else "",
                escape(e.message),
            )
        print_table(errors)
        if report.error_count > len(report.errors):
            out.print(f"… and {report.error_count - len(report.errors)} more errors.")
    if report.ok:
        out.print("[green]The file conforms to the layout.[/]")
    else:
        failed = sum(1 for c in report.checks if not c.ok)
        err.print(
            f"[bold red]The file does not conform:[/] {report.error_count} error(s), "
            f"{failed} failed control check(s)."
        )
