"""Streaming `multipart/form-data` reception: the file part goes straight to disk.

Starlette's form parser spools files to the system temp directory (and keeps the first
megabyte in memory); an import needs the file under `settings.data_dir` as a path, so
this reads the request stream itself and writes the file part as it arrives, never
holding more than one network chunk of it. The request size limit is enforced by the
ASGI guard around the app, which counts the bytes this loop receives.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from fastapi import HTTPException, Request
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.concurrency import run_in_threadpool

from recaudo.domain.errors import ValidationFailed

MAX_FIELDS = 16
MAX_FIELD_BYTES = 1024  # text fields are short switches (mode, skip_invalid)
MAX_FILE_NAME = 255


@dataclass
class ReceivedFile:
    field: str
    file_name: str | None
    path: Path
    size: int = 0


@dataclass
class ReceivedForm:
    fields: dict[str, str] = field(default_factory=dict)
    files: list[ReceivedFile] = field(default_factory=list)


def _clean_file_name(raw: bytes) -> str | None:
    # Only the base name matters (browsers may send a full Windows path); it is shown
    # in reports, never used to build a path.
    name = raw.decode("utf-8", errors="replace").replace("\\", "/")
    base = PurePosixPath(name).name.replace("\x00", "").strip()
    return base[:MAX_FILE_NAME] or None


class _Collector:
    """python-multipart callbacks: headers and field values in memory, file bytes queued."""

    def __init__(self, form: ReceivedForm, directory: Path) -> None:
        self.form = form
        self.directory = directory
        self.header_name = b""
        self.header_value = b""
        self.disposition = b""
        self.name = ""
        self.value = bytearray()
        self.file: ReceivedFile | None = None
        self.handle: BinaryIO | None = None
        self.handles: list[BinaryIO] = []
        self.pending: list[tuple[BinaryIO, bytes]] = []
        self.ended = False

    def on_part_begin(self) -> None:
        self.disposition, self.name, self.value, self.file, self.handle = (
            b"",
            "",
            bytearray(),
            None,
            None,
        )

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self.header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self.header_value += data[start:end]

    def on_header_end(self) -> None:
        if self.header_name.lower() == b"content-disposition":
            self.disposition = self.header_value
        self.header_name, self.header_value = b"", b""

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self.disposition)
        if b"name" not in options:
            raise ValidationFailed("a multipart part has no name", field="body")
        self.name = options[b"name"].decode("utf-8", errors="replace")
        if b"filename" in options:
            fd, name = tempfile.mkstemp(prefix="upload-", suffix=".part", dir=self.directory)
            self.handle = os.fdopen(fd, "wb")
            self.handles.append(self.handle)
            self.file = ReceivedFile(self.name, _clean_file_name(options[b"filename"]), Path(name))
            self.form.files.append(self.file)
        elif len(self.form.fields) >= MAX_FIELDS:
            raise ValidationFailed(f"more than {MAX_FIELDS} form fields", field="body")

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self.file is not None and self.handle is not None:
            self.file.size += end - start
            self.pending.append((self.handle, data[start:end]))
            return
        self.value += data[start:end]
        if len(self.value) > MAX_FIELD_BYTES:
            raise ValidationFailed(
                f"form field {self.name!r} is longer than {MAX_FIELD_BYTES} bytes", field=self.name
            )

    def on_part_end(self) -> None:
        if self.file is None:
            self.form.fields[self.name] = self.value.decode("utf-8", errors="replace")

    def on_end(self) -> None:
        self.ended = True

    def flush(self) -> None:
        for handle, chunk in self.pending:
            handle.write(chunk)
        self.pending.clear()

    def close(self) -> None:
        for handle in self.handles:
            handle.close()


@asynccontextmanager
async def receive_form(request: Request, directory: Path) -> AsyncIterator[ReceivedForm]:
    """Read the multipart body; its files exist under `directory` until the block ends."""
    content_type, params = parse_options_header(request.headers.get("content-type"))
    if content_type != b"multipart/form-data":
        raise HTTPException(415, "the body must be multipart/form-data")
    boundary = params.get(b"boundary")
    if not boundary:
        raise ValidationFailed("the multipart body has no boundary", field="body")
    form = ReceivedForm()
    collector = _Collector(form, directory)
    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": collector.on_part_begin,
            "on_part_data": collector.on_part_data,
            "on_part_end": collector.on_part_end,
            "on_header_field": collector.on_header_field,
            "on_header_value": collector.on_header_value,
            "on_header_end": collector.on_header_end,
            "on_headers_finished": collector.on_headers_finished,
            "on_end": collector.on_end,
        },
    )
    try:
        try:
            async for chunk in request.stream():
                parser.write(chunk)
                if collector.pending:
                    # Disk writes leave the event loop, which keeps serving other requests.
                    await run_in_threadpool(collector.flush)
            parser.finalize()
            if not collector.ended:
                # python-multipart does not check this itself: a body cut short would
                # otherwise import a truncated file.
                raise ValidationFailed("the multipart body is incomplete", field="body")
        except FormParserError:
            raise ValidationFailed("the multipart body is malformed", field="body") from None
        finally:
            collector.close()
        yield form
    finally:
        for received in form.files:
            with suppress(FileNotFoundError):
                received.path.unlink()
