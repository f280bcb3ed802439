"""SMTP_URL asks for STARTTLS and credentials: the mailer upgrades the connection (verifying the
certificate) and authenticates; with the wrong password nothing is sent, and nothing is lost."""
from __future__ import annotations

import asyncio
import datetime
import ipaddress
import ssl

import pytest
from aiohttp.test_utils import unused_port
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from shared.mail.sender import SmtpTarget

from .conftest import Inbox, eventually


def self_signed(tmp_path):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=1))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


class Credentials:
    def __init__(self):
        self.logins: list[tuple[str, bool]] = []

    def __call__(self, server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (b"mailer", b"s3cret/x")
        self.logins.append((auth_data.login.decode(), bool(session.ssl)))
        return AuthResult(success=ok, handled=False)


def test_smtp_url_parsing():
    t = SmtpTarget.from_url("smtp://us%40er:p%2Fw@mail.example:587?starttls=true")
    assert (t.host, t.port, t.username, t.password, t.start_tls, t.use_tls) == (
        "mail.example", 587, "us@er", "p/w", True, False)
    assert SmtpTarget.from_url("smtps://mail.example").port == 465
    assert SmtpTarget.from_url("smtp://127.0.0.1:1025") == SmtpTarget("127.0.0.1", 1025)
    with pytest.raises(ValueError):
        SmtpTarget.from_url("http://mail.example")


async def test_starttls_and_credentials_from_the_url(start_app, mail_settings, signup, tmp_path, monkeypatch,
                                                    admin_db):
    cert, key = self_signed(tmp_path)
    # The mailer verifies the server certificate against the default trust store: trust ours.
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)
    inbox, credentials, port = Inbox(), Credentials(), unused_port()
    server = Controller(inbox, hostname="127.0.0.1", port=port, tls_context=tls, require_starttls=True,
                        auth_required=True, auth_require_tls=True, authenticator=credentials)
    server.start()
    try:
        wrong = await start_app(mail_settings(smtp_url=f"smtp://mailer:nope@127.0.0.1:{port}?starttls=true"))
        refused = await signup(c=wrong)
        await eventually(lambda: asyncio.sleep(0, credentials.logins), timeout=10)
        await asyncio.sleep(1)
        assert inbox.to(refused.email) == []
        await wrong.close()

        good = await start_app(mail_settings(smtp_url=f"smtp://mailer:s3cret%2Fx@127.0.0.1:{port}?starttls=true"))
        account = await signup(c=good)
        await inbox.wait_for(account.email)
        # the refused email was kept and goes out with the right credentials
        await inbox.wait_for(refused.email)
        assert all(tls_on for _, tls_on in credentials.logins)  # credentials only ever over TLS
        assert ("mailer", True) in credentials.logins
    finally:
        server.stop()
