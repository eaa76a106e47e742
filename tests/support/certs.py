"""A throw-away certificate authority and a server certificate for 127.0.0.1.

Used by the security tests to run Redis over TLS and Kafka with SASL_SSL locally.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Certs:
    ca: Path
    cert: Path
    key: Path


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_certs(folder: Path) -> Certs:
    """A CA, and a server key and certificate it signed, valid for 127.0.0.1 and localhost."""
    folder.mkdir(parents=True, exist_ok=True)
    key_and_csr = ["-newkey", "rsa:2048", "-nodes", "-keyout"]
    openssl("req", "-x509", *key_and_csr, "ca.key", "-out", "ca.crt", "-days", "2",
            "-subj", "/CN=wikipulse-test-ca", cwd=folder)  # fmt: skip
    openssl("req", *key_and_csr, "server.key", "-out", "server.csr", "-subj", "/CN=localhost",
            cwd=folder)  # fmt: skip
    (folder / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "server.crt", "-days", "2", "-extfile", "ext.cnf",
            cwd=folder)  # fmt: skip
    return Certs(folder / "ca.crt", folder / "server.crt", folder / "server.key")
