"""Logging set-up: one handler on stderr, and a filter that keeps personal data and secrets out.

Every record that reaches the handler goes through `MaskingFilter`: national ids that look
like a Chilean RUT, a Colombian NIT or a Spanish NIF/NIE/CIF are reduced to their first and
last two characters; bearer tokens, Recaudo API keys, passwords in database URLs and
`password=`/`token=`-style pairs are replaced by `***`. Structured fields passed with
`extra=` under a known name (`national_id`, `customer_name`, ...) are masked too.
The filter is applied to the formatted message and to the traceback text, so an exception
that carries a customer's id prints masked as well.
"""

from __future__ import annotations

import logging
import re
import sys
from typing import TextIO

from stdnum.cl import rut

from recaudo.domain.ids import mask_name, mask_national_id

MASK = "***"

# Record attributes (set with `extra=`) that hold a person's id or name.
NATIONAL_ID_FIELDS = ("national_id", "rut", "nif", "nit", "document")
PERSON_NAME_FIELDS = ("customer_name", "person_name", "holder_name")

# Each secret pattern with the lowercase words it cannot match without: a log line is
# searched for a pattern only when one of them is in it. Logging runs on every request
# (the access log), and nine regular-expression passes per line cost more than the
# bank channel's whole database work; the plain substring test costs almost nothing.
_SECRETS: tuple[tuple[re.Pattern[str], str, tuple[str, ...]], ...] = (
    # Authorization: Bearer <token>
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+"), rf"\1 {MASK}", ("bearer", "basic")),
    # Recaudo API keys: rk_<public prefix>_<secret>; the prefix alone identifies nothing secret.
    (re.compile(r"\b(rk_[0-9a-f]{12}_)[A-Za-z0-9_-]+"), rf"\1{MASK}", ("rk_",)),
    # user:password@ in URLs (database URLs above all).
    (
        re.compile(r"(\b[a-z][a-z0-9+.-]*://[^:/@\s]+:)[^@\s]+@", re.IGNORECASE),
        rf"\1{MASK}@",
        ("://",),
    ),
    # Free-text searches in query strings (admin API access logs): ?q=Juan+P%C3%A9rez
    # may be a person's name. National ids there are masked by the patterns below.
    (re.compile(r"([?&](?:q|name)=)[^&\s\"]+"), rf"\1{MASK}", ("q=", "name=")),
    # password=..., secret: ..., token=..., api_key=...
    (
        re.compile(
            r"(?i)\b(password|passwd|pwd|secret|token|api[_-]?key|authorization)"
            r"(\"?\s*[=:]\s*\"?)(?!\s*(?:bearer|basic)\b)[^\s\"',;&]+"
        ),
        rf"\1\2{MASK}",
        ("passw", "pwd", "secret", "token", "api", "authorization"),
    ),
)

# National ids, all in one pass (alternatives tried left to right at each position):
# - a RUT with separators: 12.345.678-5, 12345678-K, 1.234.567-4;
# - a Colombian NIT with check digit: 900.123.456-7, 900123456-7;
# - a Spanish DNI-based NIF, NIE or CIF (upper or lower case, optional hyphens);
# - a RUT in its stored compact form (123456785, 12345678K), masked only when its check
#   digit holds (otherwise it is just a number).
_IDS = re.compile(
    r"(?P<rut>(?<![\w.-])(?:\d{1,2}(?:\.\d{3}){2}|\d{7,8})-[\dkK](?![\w-]))"
    r"|(?P<nit>(?<![\w.-])\d{3}\.?\d{3}\.?\d{3}-\d(?![\w-]))"
    r"|(?P<nif>(?i:(?<![\w-])(?:"
    r"\d{8}-?[A-Z]"  # DNI-based NIF
    r"|[XYZ]-?\d{7}-?[A-Z]"  # NIE
    r"|[ABCDEFGHJNPQRSUVW]-?\d{7}-?[0-9A-J]"  # CIF
    r")(?![\w-])))"
    r"|(?P<compact>(?<![\w.-])(?P<body>\d{7,8})(?P<check>[\dkK])(?![\w.-]))"
)
# Every id above contains seven digits in a row or a dotted group like 1.234.567.
_MAY_HOLD_ID = re.compile(r"\d{7}|\d\.\d{3}\.\d{3}")


def _mask_id(match: re.Match[str]) -> str:
    if match.group("compact") is not None:
        body, check = match.group("body"), match.group("check").upper()
        if str(rut.calc_check_digit(body)) != check:
            return match.group(0)
        return mask_national_id(match.group(0))
    return mask_national_id(re.sub(r"[.\-\s]", "", match.group(0)))


def mask_text(text: str) -> str:
    """`text` with secrets replaced by `***` and national ids reduced to their ends."""
    lowered = text.lower()
    for pattern, replacement, words in _SECRETS:
        if any(word in lowered for word in words):
            text = pattern.sub(replacement, text)
    if _MAY_HOLD_ID.search(text):
        text = _IDS.sub(_mask_id, text)
    return text


class MaskingFilter(logging.Filter):
    """Rewrites each record in place so that no handler ever sees the clear values."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if record.name == "uvicorn.access" and isinstance(args, tuple) and len(args) == 5:
            # The access log (one record per request): only the path and query string can
            # hold ids or secrets; the address, method, version and status cannot.
            client, method, path, version, status = args
            record.args = (client, method, mask_text(str(path)), version, status)
            return True
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a bad format string: still log, masked
            message = f"{record.msg} {record.args}"
        record.msg = mask_text(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_text(record.exc_text)
        if record.stack_info:
            record.stack_info = mask_text(record.stack_info)
        for field in NATIONAL_ID_FIELDS:
            value = record.__dict__.get(field)
            if isinstance(value, str) and value:
                record.__dict__[field] = mask_national_id(re.sub(r"[.\-\s]", "", value))
        for field in PERSON_NAME_FIELDS:
            value = record.__dict__.get(field)
            if isinstance(value, str) and value:
                record.__dict__[field] = mask_name(value)
        return True


class _StderrHandler(logging.StreamHandler[TextIO]):
    """Writes to whatever `sys.stderr` is at the time of each record (test runners swap it)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        pass


FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
_HANDLER_NAME = "recaudo"


def configure_logging(level: str | int = "INFO") -> logging.Handler:
    """Send every log record (Recaudo's, uvicorn's, SQLAlchemy's) masked to stderr.

    Safe to call more than once: the previous Recaudo handler is replaced, not doubled.
    """
    numeric = logging.getLevelName(level.upper()) if isinstance(level, str) else level
    if not isinstance(numeric, int):
        raise ValueError(f"unknown log level {level!r}")
    root = logging.getLogger()
    for existing in list(root.handlers):
        if existing.get_name() == _HANDLER_NAME:
            root.removeHandler(existing)
    handler = _StderrHandler()
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(logging.Formatter(FORMAT))
    handler.addFilter(MaskingFilter())
    root.addHandler(handler)
    root.setLevel(numeric)
    # uvicorn's loggers propagate to the root when it is started with log_config=None.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    return handler
