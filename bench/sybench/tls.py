"""The bench's TLS certificate: one ECDSA P-256 key and a self-signed certificate for 127.0.0.1,
made fresh in the workdir by the openssl CLI for every run, and used by every system that
terminates TLS (the upstream's direct listener and each proxy), so that all of them sign with
the same key type and send the same chain."""
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .systems import which

NAME = "bench.test"  # in the certificate beside IP:127.0.0.1; clients connect to the address


@dataclass
class Certificate:
    cert: Path       # PEM certificate (the whole chain: it is self-signed)
    key: Path        # PEM private key
    combined: Path   # certificate then key in one file (HAProxy's `crt`)
    description: str


def make_certificate(directory):
    """Writes the key and certificate under DIRECTORY. Raises RuntimeError saying why not."""
    openssl = which("openssl")
    if not openssl:
        raise RuntimeError("the openssl command is not installed")
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    cert, key, combined = d / "cert.pem", d / "key.pem", d / "cert+key.pem"
    argv = [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "7", "-sha256",
            "-subj", f"/CN={NAME}", "-addext", f"subjectAltName=DNS:{NAME},IP:127.0.0.1"]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=60,
                       stdin=subprocess.DEVNULL)
    if r.returncode != 0 or not cert.exists() or not key.exists():
        raise RuntimeError(f"openssl req exited {r.returncode}: {(r.stderr or r.stdout)[-300:]}")
    text = subprocess.run([openssl, "x509", "-in", str(cert), "-noout", "-text"],
                          capture_output=True, text=True, timeout=60).stdout
    if "prime256v1" not in text and "P-256" not in text:
        raise RuntimeError(f"the certificate made in {cert} is not ECDSA P-256")
    combined.write_text(cert.read_text() + key.read_text())
    key.chmod(0o600)
    combined.chmod(0o600)
    return Certificate(cert, key, combined, "ECDSA P-256 (prime256v1), self-signed, SHA-256, "
                                            "made by `openssl req -x509` in the workdir")
