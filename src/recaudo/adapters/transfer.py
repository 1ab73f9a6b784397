"""Moving files to and from the outside: SFTP directories, local directories and e-mail.

Three kinds of target (`TargetConfig.kind`):

- ``sftp``: `settings` host, port (22), username, auth (``password`` | ``key``), host_key
  (the server's public host key, OpenSSH one-line format: ``ssh-ed25519 AAAA...``; a
  server presenting any other key is refused, there is no trust on first use), directory
  (remote, default ``.``), timeout_s (30). The secret is the password or the private key
  (OpenSSH or PEM text, unencrypted).
- ``local``: `settings` directory (must exist).
- ``email``: `settings` host, port (587), security (``starttls`` | ``ssl`` | ``none``;
  ``none`` only to a loopback address), username (optional: log in when set), from,
  recipients, cafile (optional CA bundle to trust, e.g. a private CA), timeout_s (30).
  The secret is the SMTP password.

SFTP and SMTP hosts pass the network guard (`adapters.netguard`, the webhooks' policy):
each connection resolves the host once, refuses it when any address is link-local (cloud
metadata), multicast, unspecified, ... or, unless `TargetConfig.allow_private` (setting
``delivery_allow_private_targets``), loopback or private, then connects to one of the
checked addresses, never to the name again (no DNS rebinding). The server is still
verified under the configured name: SFTP against the configured host key, SMTP's TLS
certificate against the host name (not the address).

asyncssh is asynchronous; `open_directory` runs it on a private event loop in a thread of
its own, so callers (the job runner, the CLI, FastAPI's worker threads) use a plain
synchronous API whether or not their own thread runs an event loop.

Every failure is a `TransferError` whose message is safe to log and show: it names the
host, user and operation, never the password or key, and any text from the other side is
scrubbed of the secret before it is kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import posixpath
import smtplib
import socket
import ssl
import threading
import uuid
from collections.abc import Awaitable, Coroutine, Iterator, Mapping, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Any, Protocol, TypeVar

import asyncssh

from recaudo.adapters import netguard

KINDS = ("sftp", "email", "local")
DEFAULT_TIMEOUT_S = 30.0
# SFTP reads and writes go in chunks, each bounded by the target's timeout.
CHUNK = 1024 * 1024
_T = TypeVar("_T")


class TransferError(Exception):
    """A transfer failed; the message is safe to show and log (no secrets)."""


@dataclass(frozen=True)
class TargetConfig:
    """What a transfer needs: the kind, the non-secret settings and the decrypted secret."""

    kind: str
    settings: Mapping[str, Any]
    secret: str | None = field(default=None, repr=False)
    # Loopback and private addresses allowed (setting `delivery_allow_private_targets`).
    allow_private: bool = False

    def __repr__(self) -> str:  # never print the secret, even in a traceback
        return (
            f"TargetConfig(kind={self.kind!r}, settings={dict(self.settings)!r}, "
            f"allow_private={self.allow_private!r})"
        )

    def setting(self, name: str, default: Any = None) -> Any:
        value = self.settings.get(name, default)
        return default if value is None or value == "" else value

    @property
    def timeout_s(self) -> float:
        try:
            value = float(self.setting("timeout_s", DEFAULT_TIMEOUT_S))
        except (TypeError, ValueError):
            return DEFAULT_TIMEOUT_S
        return value if value > 0 else DEFAULT_TIMEOUT_S


@dataclass(frozen=True)
class RemoteFile:
    name: str
    size: int
    modified_at: datetime


class RemoteDirectory(Protocol):
    """An SFTP directory or a local one. Names are plain file names, never paths."""

    def list_files(self) -> list[RemoteFile]: ...

    def read(self, name: str) -> bytes: ...

    def write(self, name: str, data: bytes) -> str:
        """Write atomically (a temporary name, then a rename); returns the path written."""
        ...

    def move(self, name: str, subdir: str) -> None:
        """Move a file into a subdirectory (created when missing), replacing a namesake."""
        ...

    def delete(self, name: str) -> None:
        """Delete a file; a file already gone is not an error."""
        ...


def scrub(text: str, secret: str | None) -> str:
    """`text` without the secret (nor any of its lines, for multi-line private keys)."""
    if secret:
        for piece in [secret, *(line.strip() for line in secret.splitlines())]:
            if len(piece) >= 4:
                text = text.replace(piece, "***")
    return text


def check_name(name: str) -> str:
    """A file name that cannot escape the directory: no separators, no `.`/`..`."""
    if (
        not name
        or name in (".", "..")
        or "/" in name
        or "\\" in name
        or "\x00" in name
        or len(name) > 255
    ):
        raise TransferError(f"not a plain file name: {name!r}")
    return name


def _temp_name(name: str) -> str:
    return f".{name}.{uuid.uuid4().hex[:12]}.part"


def _is_temp(name: str) -> bool:
    return name.startswith(".") and name.endswith(".part")


def checked_addresses(
    target: TargetConfig, host: str, port: int, what: str
) -> list[netguard.IPAddress]:
    """Resolve `host` once and check every address (`adapters.netguard`); connect only to
    those. `what` starts the error message (``connecting to sftp://...``)."""
    try:
        return netguard.allowed_addresses(host, port, allow_private=target.allow_private)
    except netguard.TargetRefused as exc:
        raise TransferError(
            f"{what} refused: {exc} (delivery targets must reach a public internet address)"
        ) from None
    except netguard.TargetUnresolved:
        raise TransferError(f"{what} failed: unknown host") from None


# --- local directories -------------------------------------------------------------------


class LocalDirectory:
    def __init__(self, directory: Path) -> None:
        self.path = directory

    def _file(self, name: str) -> Path:
        return self.path / check_name(name)

    def list_files(self) -> list[RemoteFile]:
        try:
            entries = sorted(os.scandir(self.path), key=lambda e: e.name)
            out = []
            for entry in entries:
                if not entry.is_file(follow_symlinks=False) or _is_temp(entry.name):
                    continue
                st = entry.stat(follow_symlinks=False)
                out.append(
                    RemoteFile(entry.name, st.st_size, datetime.fromtimestamp(st.st_mtime, UTC))
                )
            return out
        except OSError as exc:
            raise TransferError(f"cannot list {self.path}: {exc.strerror or exc}") from None

    def read(self, name: str) -> bytes:
        try:
            return self._file(name).read_bytes()
        except OSError as exc:
            raise TransferError(f"cannot read {name} in {self.path}: {exc.strerror}") from None

    def write(self, name: str, data: bytes) -> str:
        final = self._file(name)
        tmp = self.path / _temp_name(name)
        try:
            with open(tmp, "xb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, final)
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise TransferError(f"cannot write {name} in {self.path}: {exc.strerror}") from None
        return str(final)

    def move(self, name: str, subdir: str) -> None:
        source = self._file(name)
        folder = self.path / check_name(subdir)
        try:
            folder.mkdir(exist_ok=True)
            os.replace(source, folder / name)
        except OSError as exc:
            raise TransferError(
                f"cannot move {name} to {subdir} in {self.path}: {exc.strerror}"
            ) from None

    def delete(self, name: str) -> None:
        try:
            self._file(name).unlink(missing_ok=True)
        except OSError as exc:
            raise TransferError(f"cannot delete {name} in {self.path}: {exc.strerror}") from None


def _local(target: TargetConfig) -> LocalDirectory:
    directory = target.setting("directory")
    if not directory:
        raise TransferError("a local target needs a directory")
    path = Path(str(directory))
    if not path.is_dir():
        raise TransferError(f"directory {path} does not exist")
    return LocalDirectory(path)


# --- SFTP ----------------------------------------------------------------------------------


class _LoopThread:
    """A private event loop in a daemon thread: runs coroutines for synchronous callers."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="sftp", daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, _T], timeout: float | None) -> _T:
        """Run `coro` on the loop; `timeout` None: the coroutine times its own steps."""
        if timeout is None:
            return asyncio.run_coroutine_threadsafe(coro, self.loop).result()
        future: Future[_T] = asyncio.run_coroutine_threadsafe(
            asyncio.wait_for(coro, timeout), self.loop
        )
        try:
            # A little beyond wait_for's own limit: wait_for cancels first and we get its
            # TimeoutError; this bound only guards against a wedged loop.
            return future.result(timeout + 5)
        except FutureTimeout:
            future.cancel()
            raise TimeoutError from None

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        if not self.thread.is_alive():
            self.loop.close()


def parse_host_key(text: str) -> asyncssh.SSHKey:
    """The public key of an OpenSSH line: ``type base64 [comment]``, or a known_hosts line
    (``host type base64``)."""
    text = " ".join(str(text).split())
    if not text:
        raise TransferError("an SFTP target needs the server's host key")
    candidates = [text]
    parts = text.split(" ")
    if len(parts) >= 3:
        candidates.append(" ".join(parts[1:]))
    for candidate in candidates:
        try:
            return asyncssh.import_public_key(candidate)
        except (asyncssh.KeyImportError, ValueError):
            continue
    raise TransferError("the host key is not an OpenSSH public key (ssh-ed25519 AAAA...)")


def host_key_fingerprint(text: str) -> str:
    return str(parse_host_key(text).get_fingerprint("sha256"))


class SftpDirectory:
    def __init__(
        self,
        runner: _LoopThread,
        sftp: asyncssh.SFTPClient,
        directory: str,
        where: str,
        timeout: float,
        secret: str | None,
    ) -> None:
        self._runner = runner
        self._sftp = sftp
        self.directory = directory
        self._where = where
        self._timeout = timeout
        self._secret = secret

    def _path(self, name: str) -> str:
        return posixpath.join(self.directory, check_name(name))

    async def _step(self, awaitable: Awaitable[_T]) -> _T:
        return await asyncio.wait_for(awaitable, self._timeout)

    def _do(self, what: str, coro: Coroutine[Any, Any, _T], *, whole: bool = True) -> _T:
        # `whole`: the timeout bounds the operation; else each step of it (a chunk of a
        # large file), so a slow transfer that keeps moving is not cut off.
        try:
            return self._runner.run(coro, self._timeout if whole else None)
        except TimeoutError:
            raise TransferError(
                f"{what} on {self._where} timed out after {self._timeout:g} s"
            ) from None
        except asyncssh.SFTPError as exc:
            reason = scrub(str(exc.reason or exc), self._secret)
            raise TransferError(f"{what} on {self._where} failed: {reason}") from None
        except (OSError, asyncssh.Error) as exc:
            raise TransferError(
                f"{what} on {self._where} failed: {scrub(_describe(exc), self._secret)}"
            ) from None

    def list_files(self) -> list[RemoteFile]:
        async def go() -> list[RemoteFile]:
            out = []
            for entry in await self._sftp.readdir(self.directory):
                name = str(entry.filename)
                attrs = entry.attrs
                if name in (".", "..") or _is_temp(name):
                    continue
                if attrs.type not in (asyncssh.FILEXFER_TYPE_REGULAR, None):
                    continue
                mtime = datetime.fromtimestamp(attrs.mtime or 0, UTC)
                out.append(RemoteFile(name, int(attrs.size or 0), mtime))
            return sorted(out, key=lambda f: f.name)

        return self._do(f"listing {self.directory}", go())

    def read(self, name: str) -> bytes:
        path = self._path(name)

        async def go() -> bytes:
            parts: list[bytes] = []
            offset = 0
            fh: asyncssh.SFTPClientFile = await self._step(self._sftp.open(path, "rb"))
            try:
                while True:
                    chunk = await self._step(fh.read(CHUNK, offset))
                    assert isinstance(chunk, bytes)
                    if not chunk:
                        return b"".join(parts)
                    parts.append(chunk)
                    offset += len(chunk)
            finally:
                with contextlib.suppress(Exception):
                    await self._step(fh.close())

        return self._do(f"reading {path}", go(), whole=False)

    def write(self, name: str, data: bytes) -> str:
        path = self._path(name)
        tmp = posixpath.join(self.directory, _temp_name(name))

        async def go() -> None:
            try:
                fh: asyncssh.SFTPClientFile = await self._step(self._sftp.open(tmp, "wb"))
                try:
                    for offset in range(0, len(data), CHUNK):
                        await self._step(fh.write(data[offset : offset + CHUNK], offset))
                finally:
                    await self._step(fh.close())
                await self._step(self._replace(tmp, path))
            except BaseException:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self._sftp.remove(tmp), self._timeout)
                raise

        self._do(f"writing {path}", go(), whole=False)
        return path

    async def _replace(self, source: str, dest: str) -> None:
        # SFTP v3 `rename` refuses an existing target; OpenSSH's posix-rename replaces it.
        try:
            await self._sftp.posix_rename(source, dest)
        except asyncssh.SFTPOpUnsupported:
            with contextlib.suppress(asyncssh.SFTPNoSuchFile):
                await self._sftp.remove(dest)
            await self._sftp.rename(source, dest)

    def move(self, name: str, subdir: str) -> None:
        source = self._path(name)
        folder = posixpath.join(self.directory, check_name(subdir))

        async def go() -> None:
            if not await self._sftp.isdir(folder):
                await self._sftp.makedirs(folder, exist_ok=True)
            await self._replace(source, posixpath.join(folder, name))

        self._do(f"moving {source} to {folder}", go())

    def delete(self, name: str) -> None:
        path = self._path(name)

        async def go() -> None:
            with contextlib.suppress(asyncssh.SFTPNoSuchFile):
                await self._sftp.remove(path)

        self._do(f"deleting {path}", go())


def _describe(exc: BaseException) -> str:
    if isinstance(exc, asyncssh.HostKeyNotVerifiable):
        return "the server's host key is not the known host key (refused)"
    if isinstance(exc, asyncssh.PermissionDenied):
        return "login refused (permission denied)"
    if isinstance(exc, asyncssh.DisconnectError):
        return f"disconnected: {exc.reason}"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, socket.gaierror):
        return "unknown host"
    if isinstance(exc, OSError):
        return exc.strerror or type(exc).__name__
    return str(exc) or type(exc).__name__


def _client_key(secret: str) -> asyncssh.SSHKey:
    try:
        return asyncssh.import_private_key(secret)
    except (asyncssh.KeyImportError, ValueError):
        # Never echo the key or the parser's message (it may quote it).
        raise TransferError("cannot read the private key (OpenSSH or PEM, unencrypted)") from None


@contextmanager
def _sftp(target: TargetConfig) -> Iterator[SftpDirectory]:
    host = str(target.setting("host", ""))
    if not host:
        raise TransferError("an SFTP target needs a host")
    try:
        port = int(target.setting("port", 22))
    except (TypeError, ValueError):
        raise TransferError("the SFTP port is not a number") from None
    user = str(target.setting("username", ""))
    if not user:
        raise TransferError("an SFTP target needs a username")
    auth = str(target.setting("auth", "password"))
    known = parse_host_key(str(target.setting("host_key", "")))
    directory = str(target.setting("directory", "."))
    timeout = target.timeout_s
    where = f"sftp://{user}@{host}:{port}"
    secret = target.secret
    if not secret:
        raise TransferError(f"no {'private key' if auth == 'key' else 'password'} for {where}")
    options: dict[str, Any] = {
        "username": user,
        # Only the configured key is trusted, whatever the host's name; no ~/.ssh lookups.
        "known_hosts": ([known], [], []),
        "connect_timeout": timeout,
        "login_timeout": timeout,
        "agent_path": None,
        "config": [],
        "ignore_encrypted": True,
    }
    if auth == "key":
        options.update(client_keys=[_client_key(secret)], password=None, preferred_auth="publickey")
    elif auth == "password":
        options.update(client_keys=None, password=secret, preferred_auth="password")
    else:
        raise TransferError(f"unknown SFTP auth {auth!r} (password or key)")

    addresses = checked_addresses(target, host, port, f"connecting to {where}")
    runner = _LoopThread()
    conn: asyncssh.SSHClientConnection | None = None
    sftp: asyncssh.SFTPClient | None = None
    try:

        async def connect() -> tuple[asyncssh.SSHClientConnection, asyncssh.SFTPClient]:
            # To a checked address, never the name again; the host key is checked all the
            # same (`known_hosts` trusts only the configured key, whatever the host).
            for address in addresses[:-1]:  # the next one only when this one refuses
                try:
                    c = await asyncssh.connect(str(address), port, **options)
                    break
                except ConnectionRefusedError:
                    continue
            else:
                c = await asyncssh.connect(str(addresses[-1]), port, **options)
            try:
                return c, await c.start_sftp_client()
            except BaseException:
                c.close()
                raise

        try:
            conn, sftp = runner.run(connect(), timeout + 5)
        except TimeoutError:
            raise TransferError(f"connecting to {where} timed out after {timeout:g} s") from None
        except (OSError, asyncssh.Error) as exc:
            raise TransferError(
                f"connecting to {where} failed: {scrub(_describe(exc), secret)}"
            ) from None
        yield SftpDirectory(runner, sftp, directory, where, timeout, secret)
    finally:

        async def close() -> None:
            if sftp is not None:
                sftp.exit()
            if conn is not None:
                conn.close()
                await conn.wait_closed()

        with contextlib.suppress(Exception):
            runner.run(close(), 5)
        runner.close()


@contextmanager
def open_directory(target: TargetConfig) -> Iterator[RemoteDirectory]:
    """The target's directory (kinds ``sftp`` and ``local``), open for the `with` block."""
    if target.kind == "local":
        yield _local(target)
    elif target.kind == "sftp":
        with _sftp(target) as directory:
            yield directory
    else:
        raise TransferError(f"a {target.kind} target has no directory")


# --- e-mail --------------------------------------------------------------------------------


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def build_message(
    sender: str,
    recipients: Sequence[str],
    subject: str,
    body: str,
    attachments: Sequence[tuple[str, bytes]] = (),
) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = ", ".join(recipients)
    msg["Subject"] = subject
    msg["Date"] = formatdate(localtime=False, usegmt=True)
    msg["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    msg.set_content(body)
    for name, data in attachments:
        msg.add_attachment(
            data, maintype="application", subtype="octet-stream", filename=check_name(name)
        )
    return msg


class _Step:
    name = "connecting"


# smtplib connects in `_get_socket(host, ...)` and verifies TLS (SMTP_SSL and STARTTLS)
# against `self._host`, the name given to the constructor. These connect to a checked
# address instead while `_host` stays the configured name, so the certificate is still
# verified against the name, not the address.
class _PinnedSMTP(smtplib.SMTP):
    def __init__(self, host: str, port: int, *, address: str, timeout: float) -> None:
        self._address = address
        super().__init__(host, port, timeout=timeout)

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        sock: socket.socket = super()._get_socket(self._address, port, timeout)  # type: ignore[misc]
        return sock


class _PinnedSMTPSSL(smtplib.SMTP_SSL):
    def __init__(
        self, host: str, port: int, *, address: str, timeout: float, context: ssl.SSLContext
    ) -> None:
        self._address = address
        super().__init__(host, port, timeout=timeout, context=context)

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        sock: socket.socket = super()._get_socket(self._address, port, timeout)  # type: ignore[misc]
        return sock


@contextmanager
def _smtp_session(target: TargetConfig) -> Iterator[tuple[smtplib.SMTP, _Step, str]]:
    """A logged-in SMTP session (TLS as the target says); errors become TransferError."""
    if target.kind != "email":
        raise TransferError(f"a {target.kind} target does not send e-mail")
    host = str(target.setting("host", ""))
    if not host:
        raise TransferError("an e-mail target needs an SMTP host")
    security = str(target.setting("security", "starttls"))
    if security not in ("starttls", "ssl", "none"):
        raise TransferError(f"unknown SMTP security {security!r} (starttls, ssl or none)")
    if security == "none" and not _is_loopback(host):
        raise TransferError("plain SMTP (security none) is allowed only to a loopback address")
    try:
        port = int(target.setting("port", 465 if security == "ssl" else 587))
    except (TypeError, ValueError):
        raise TransferError("the SMTP port is not a number") from None
    username = target.setting("username")
    secret = target.secret
    where = f"smtp://{host}:{port}"
    timeout = target.timeout_s
    step = _Step()
    addresses = checked_addresses(target, host, port, f"{step.name} on {where}")
    try:
        context = ssl.create_default_context(cafile=target.setting("cafile"))
        client: smtplib.SMTP | None = None
        for n, address in enumerate(addresses, 1):
            try:
                if security == "ssl":
                    client = _PinnedSMTPSSL(
                        host, port, address=str(address), timeout=timeout, context=context
                    )
                else:
                    client = _PinnedSMTP(host, port, address=str(address), timeout=timeout)
                break
            except ConnectionRefusedError:
                if n == len(addresses):
                    raise
        assert client is not None
        with client:
            client.ehlo()
            if security == "starttls":
                step.name = "starting TLS"
                if not client.has_extn("starttls"):
                    raise TransferError(f"{where} does not offer STARTTLS (refused to send)")
                client.starttls(context=context)
                client.ehlo()
            if username:
                step.name = "logging in"
                if not secret:
                    raise TransferError(f"no SMTP password for {username}")
                client.login(str(username), secret)
            step.name = "sending"
            yield client, step, where
    except TransferError:
        raise
    except smtplib.SMTPAuthenticationError as exc:
        raise TransferError(
            f"{step.name} on {where} as {username}: login refused ({exc.smtp_code})"
        ) from None
    except smtplib.SMTPRecipientsRefused as exc:
        raise TransferError(
            f"{where} refused every recipient: {', '.join(sorted(exc.recipients))}"
        ) from None
    except smtplib.SMTPResponseException as exc:
        text = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else ""
        raise TransferError(
            f"{step.name} on {where} failed: {exc.smtp_code} {scrub(text, secret)}".rstrip()
        ) from None
    except TimeoutError:
        raise TransferError(f"{step.name} on {where} timed out after {timeout:g} s") from None
    except ssl.SSLError as exc:
        raise TransferError(f"{step.name} on {where}: TLS failed ({exc.reason or exc})") from None
    except (OSError, smtplib.SMTPException) as exc:
        raise TransferError(
            f"{step.name} on {where} failed: {scrub(_describe(exc), secret)}"
        ) from None


def send_mail(
    target: TargetConfig,
    recipients: Sequence[str],
    subject: str,
    body: str,
    attachments: Sequence[tuple[str, bytes]] = (),
) -> None:
    """Send one message through the target's SMTP server (STARTTLS unless it says otherwise)."""
    sender = str(target.setting("from", ""))
    if not sender:
        raise TransferError("an e-mail target needs a sender address (from)")
    rcpts = [r.strip() for r in recipients if r and r.strip()]
    if not rcpts:
        raise TransferError("no recipients")
    message = build_message(sender, rcpts, subject, body, attachments)
    with _smtp_session(target) as (client, _step, where):
        refused = client.send_message(message, from_addr=sender, to_addrs=rcpts)
        if refused:
            raise TransferError(f"{where} refused recipients: {', '.join(sorted(refused))}")


def check_mail(target: TargetConfig) -> str:
    """Connect, start TLS and log in without sending anything; what was checked."""
    with _smtp_session(target) as (client, _step, where):
        client.noop()
        login = target.setting("username")
        return f"{where}: connected" + (f", logged in as {login}" if login else "")


def check_private_key(secret: str) -> None:
    """Raise TransferError (naming nothing of the key) unless `secret` is a usable key."""
    _client_key(secret)
