"""The transfer adapters against real servers on loopback: SFTP (asyncssh), SMTP (aiosmtpd)
and a local directory."""

from __future__ import annotations

import re
from pathlib import Path

import asyncssh
import pytest

from recaudo.adapters.transfer import (
    TargetConfig,
    TransferError,
    host_key_fingerprint,
    open_directory,
    send_mail,
)
from tests.integration.sftp_server import SftpServer, sftp_server  # noqa: F401
from tests.integration.smtp_server import (  # noqa: F401
    SmtpServer,
    plain_smtp_server,
    smtp_server,
    ssl_smtp_server,
)

# Every byte value, CRLF and LF, Latin-1 accents: what arrives must be these exact bytes.
PAYLOAD = bytes(range(256)) + "Ñuñoa;Peñalolén\r\n".encode("latin-1") + b"end\n"


def try_open(target: TargetConfig) -> None:
    with open_directory(target):
        pass


def sftp_target(server: SftpServer, **overrides: object) -> TargetConfig:
    settings = server.target_settings()
    secret = overrides.pop("secret", server.password)
    settings.update(overrides)
    assert secret is None or isinstance(secret, str)
    # The test server is on 127.0.0.1: allowed like a self-hosted internal server.
    return TargetConfig("sftp", settings, secret, allow_private=True)


def test_sftp_write_arrives_byte_identical_and_lists_reads_moves_deletes(
    sftp_server: SftpServer,  # noqa: F811
) -> None:
    (sftp_server.root / "out").mkdir()
    target = sftp_target(sftp_server, directory="/out")
    with open_directory(target) as directory:
        path = directory.write("rendicion_20260302.txt", PAYLOAD)
        assert path == "/out/rendicion_20260302.txt"
        # Writing again replaces the file (atomic rename over the old one).
        directory.write("rendicion_20260302.txt", PAYLOAD)
        directory.write("other.txt", b"x")
        files = directory.list_files()
        assert [(f.name, f.size) for f in files] == [
            ("other.txt", 1),
            ("rendicion_20260302.txt", len(PAYLOAD)),
        ]
        assert directory.read("rendicion_20260302.txt") == PAYLOAD
        directory.move("other.txt", "processed")
        directory.delete("rendicion_20260302.txt")
        directory.delete("rendicion_20260302.txt")  # already gone: not an error
        assert directory.list_files() == []
    out = sftp_server.root / "out"
    assert sorted(p.name for p in out.iterdir()) == ["processed"]
    assert (out / "processed" / "other.txt").read_bytes() == b"x"


def test_sftp_file_is_byte_identical_on_the_server(sftp_server: SftpServer) -> None:  # noqa: F811
    with open_directory(sftp_target(sftp_server)) as directory:
        directory.write("f.txt", PAYLOAD)
    assert (sftp_server.root / "f.txt").read_bytes() == PAYLOAD
    # No temporary file is left behind.
    assert [p.name for p in sftp_server.root.iterdir()] == ["f.txt"]


def test_sftp_login_with_a_private_key(sftp_server: SftpServer) -> None:  # noqa: F811
    target = sftp_target(sftp_server, auth="key", secret=sftp_server.client_key)
    with open_directory(target) as directory:
        directory.write("k.txt", b"by key")
    assert (sftp_server.root / "k.txt").read_bytes() == b"by key"
    assert sftp_server.logins == []  # no password was tried


def test_sftp_accepts_a_known_hosts_line(sftp_server: SftpServer) -> None:  # noqa: F811
    line = f"[127.0.0.1]:{sftp_server.port} {sftp_server.host_key}"
    with open_directory(sftp_target(sftp_server, host_key=line)) as directory:
        assert directory.list_files() == []


def test_sftp_refuses_an_unknown_host_key(sftp_server: SftpServer) -> None:  # noqa: F811
    other = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode()
    with pytest.raises(TransferError) as info:
        try_open(sftp_target(sftp_server, host_key=other))
    assert "host key" in str(info.value)
    assert "refused" in str(info.value)
    assert sftp_server.logins == []  # no password was sent to the impostor


def test_sftp_refused_login_names_no_password(sftp_server: SftpServer) -> None:  # noqa: F811
    with pytest.raises(TransferError) as info:
        try_open(sftp_target(sftp_server, secret="wrong-password-123"))
    message = str(info.value)
    assert message == (
        f"connecting to sftp://bank@127.0.0.1:{sftp_server.port} failed: "
        "login refused (permission denied)"
    )
    assert "wrong-password-123" not in message
    assert sftp_server.logins == [("bank", False)]


def test_sftp_server_down(sftp_server: SftpServer) -> None:  # noqa: F811
    sftp_server.stop()
    with pytest.raises(TransferError) as info:
        try_open(sftp_target(sftp_server))
    assert str(info.value) == (
        f"connecting to sftp://bank@127.0.0.1:{sftp_server.port} failed: connection refused"
    )


def test_sftp_bad_settings_are_transfer_errors(sftp_server: SftpServer) -> None:  # noqa: F811
    for overrides, expected in [
        ({"host_key": "not a key"}, "the host key is not an OpenSSH public key"),
        ({"auth": "key", "secret": "-----BEGIN nonsense"}, "cannot read the private key"),
        ({"secret": None}, "no password for"),
        ({"auth": "kerberos"}, "unknown SFTP auth"),
    ]:
        with pytest.raises(TransferError, match=expected):
            try_open(sftp_target(sftp_server, **overrides))


def test_sftp_names_cannot_escape_the_directory(sftp_server: SftpServer) -> None:  # noqa: F811
    with open_directory(sftp_target(sftp_server)) as directory:
        for name in ["../x", "a/b", "..", ""]:
            with pytest.raises(TransferError, match="not a plain file name"):
                directory.write(name, b"x")


def test_sftp_missing_remote_directory(sftp_server: SftpServer) -> None:  # noqa: F811
    with (
        open_directory(sftp_target(sftp_server, directory="/nope")) as directory,
        pytest.raises(TransferError, match=re.escape("writing /nope/f.txt on sftp://")),
    ):
        directory.write("f.txt", b"x")


def test_host_key_fingerprint(sftp_server: SftpServer) -> None:  # noqa: F811
    key = asyncssh.import_public_key(sftp_server.host_key)
    assert host_key_fingerprint(sftp_server.host_key) == key.get_fingerprint("sha256")


def test_local_directory(tmp_path: Path) -> None:
    target = TargetConfig("local", {"directory": str(tmp_path)})
    with open_directory(target) as directory:
        assert directory.write("a.txt", PAYLOAD) == str(tmp_path / "a.txt")
        assert (tmp_path / "a.txt").read_bytes() == PAYLOAD
        assert [f.name for f in directory.list_files()] == ["a.txt"]
        assert directory.read("a.txt") == PAYLOAD
        directory.move("a.txt", "processed")
        assert (tmp_path / "processed" / "a.txt").read_bytes() == PAYLOAD
        assert directory.list_files() == []
        directory.write("b.txt", b"b")
        directory.delete("b.txt")
        directory.delete("b.txt")
        with pytest.raises(TransferError, match=re.escape("cannot read missing.txt")):
            directory.read("missing.txt")
    with pytest.raises(TransferError, match="does not exist"):
        try_open(TargetConfig("local", {"directory": str(tmp_path / "none")}))


def mail_target(server: SmtpServer, **overrides: object) -> TargetConfig:
    settings = server.target_settings()
    secret = overrides.pop(
        "secret", None if server.target_settings()["security"] == "none" else server.password
    )
    settings.update(overrides)
    assert secret is None or isinstance(secret, str)
    return TargetConfig("email", settings, secret, allow_private=True)


def test_mail_attachment_arrives_byte_identical_over_starttls(
    smtp_server: SmtpServer,  # noqa: F811
) -> None:
    send_mail(
        mail_target(smtp_server),
        ["tesoreria@bank.example", "ops@bank.example"],
        "Rendición 2026-03-02",
        "Adjunto el archivo.",
        [("rendicion_20260302.txt", PAYLOAD)],
    )
    [mail] = smtp_server.messages
    assert mail.tls is True
    assert mail.login == "recaudo"
    assert mail.mail_from == "recaudo@example.test"
    assert mail.rcpt_tos == ("tesoreria@bank.example", "ops@bank.example")
    assert mail.message["Subject"] == "Rendición 2026-03-02"
    assert mail.attachments() == [("rendicion_20260302.txt", PAYLOAD)]


def test_mail_refused_login_names_no_password(smtp_server: SmtpServer) -> None:  # noqa: F811
    with pytest.raises(TransferError) as info:
        send_mail(mail_target(smtp_server, secret="wrong-smtp-pass"), ["a@b.cl"], "s", "b")
    assert str(info.value) == (
        f"logging in on smtp://127.0.0.1:{smtp_server.port} as recaudo: login refused (535)"
    )
    assert smtp_server.messages == []


def test_mail_server_down(smtp_server: SmtpServer) -> None:  # noqa: F811
    smtp_server.stop()
    with pytest.raises(TransferError) as info:
        send_mail(mail_target(smtp_server), ["a@b.cl"], "s", "b")
    assert str(info.value) == (
        f"connecting on smtp://127.0.0.1:{smtp_server.port} failed: connection refused"
    )


def test_mail_untrusted_certificate_is_refused(smtp_server: SmtpServer) -> None:  # noqa: F811
    with pytest.raises(TransferError, match="TLS failed"):
        send_mail(mail_target(smtp_server, cafile=None), ["a@b.cl"], "s", "b")
    assert smtp_server.messages == []


def test_mail_plain_only_to_loopback(plain_smtp_server: SmtpServer) -> None:  # noqa: F811
    send_mail(mail_target(plain_smtp_server), ["a@b.cl"], "s", "b", [("f.txt", b"1")])
    [mail] = plain_smtp_server.messages
    assert mail.tls is False
    assert mail.attachments() == [("f.txt", b"1")]
    with pytest.raises(TransferError, match="only to a loopback address"):
        send_mail(mail_target(plain_smtp_server, host="mail.example.com"), ["a@b.cl"], "s", "b")
    # STARTTLS required but not offered: nothing is sent in the clear.
    with pytest.raises(TransferError, match="does not offer STARTTLS"):
        send_mail(mail_target(plain_smtp_server, security="starttls"), ["a@b.cl"], "s", "b")
    assert len(plain_smtp_server.messages) == 1


def test_target_config_repr_hides_the_secret() -> None:
    target = TargetConfig("sftp", {"host": "h"}, "hunter2-secret")
    assert "hunter2" not in repr(target)
    assert "hunter2" not in str(target)


def test_sftp_large_file_goes_in_chunks_byte_identical(sftp_server: SftpServer) -> None:  # noqa: F811
    # Two and a half chunks (1 MiB each), not a multiple of anything.
    big = (PAYLOAD * (2 * 1024 * 1024 // len(PAYLOAD) + 3))[: 2 * 1024 * 1024 + 524_289]
    with open_directory(sftp_target(sftp_server)) as directory:
        directory.write("big.txt", big)
        assert directory.read("big.txt") == big
        directory.write("empty.txt", b"")
        assert directory.read("empty.txt") == b""
    assert (sftp_server.root / "big.txt").read_bytes() == big
    assert (sftp_server.root / "empty.txt").read_bytes() == b""


def test_mail_over_implicit_tls(ssl_smtp_server: SmtpServer) -> None:  # noqa: F811
    target = mail_target(ssl_smtp_server)
    assert target.settings["security"] == "ssl"
    send_mail(target, ["a@b.cl"], "s", "b", [("f.txt", PAYLOAD)])
    [mail] = ssl_smtp_server.messages
    assert mail.login == "recaudo"
    assert mail.attachments() == [("f.txt", PAYLOAD)]
