"""TLS listeners from the world file: HTTPS works, and aws:SecureTransport tells the two listeners apart."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import warnings
from pathlib import Path

import pytest
from botocore.exceptions import ClientError
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.support.server import ServerProcess, free_port

KEY_ID, SECRET = "AKIATLSTESTKEY000001", "tls/test/secret/key/0000000000000000000"


def _self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


def test_tls_listener_sets_secure_transport(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    tls_port = free_port()
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "dynamodb:ListTables",
                "Resource": "*",
                "Condition": {"Bool": {"aws:SecureTransport": "true"}},
            }
        ],
    }
    world = {
        "version": 1,
        "regions": ["us-east-1"],
        "accounts": {
            "main": {
                "id": "444455556666",
                "name": "main",
                "users": {
                    "tls-only": {
                        "inline": {"https-only": policy},
                        "access_keys": [{"id": KEY_ID, "secret": SECRET}],
                    }
                },
            }
        },
        "network": {
            "public_listeners": [
                {"listen": f"127.0.0.1:{tls_port}", "tls": {"cert": str(cert), "key": str(key)}}
            ]
        },
    }
    world_file = tmp_path / "world.yaml"
    world_file.write_text(json.dumps(world))  # JSON is YAML
    server = ServerProcess(tmp_path / "data", extra_args=["--world", str(world_file)]).start()
    try:
        plain = server.client("dynamodb", aws_access_key_id=KEY_ID, aws_secret_access_key=SECRET)
        with pytest.raises(ClientError) as exc:
            plain.list_tables()
        assert exc.value.response["Error"]["Code"] == "AccessDeniedException"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            secure = server.client(
                "dynamodb",
                endpoint_url=f"https://127.0.0.1:{tls_port}",
                aws_access_key_id=KEY_ID,
                aws_secret_access_key=SECRET,
                verify=str(cert),
            )
            assert "TableNames" in secure.list_tables()
    finally:
        server.stop()
