"""Issue 12 item 8: what tables and serials look like to an administrator."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from wucme.crypto import serial_hex
from wucme.result import Result, render_text


def test_a_multi_line_error_stays_on_its_row() -> None:
    problem = ("urn:ietf:params:acme:error:rejectedIdentifier\n"
               "  detail: Error creating new order :: blocked name\n\n  status: 400")
    r = Result("Certificates").table(("HOSTS", "STATE", "LAST RESULT"),
                                     [(("a.example",), "due", problem), (("b.example",), "valid", "-")])
    lines = render_text(r).splitlines()
    assert len(lines) == 3  # the heading and one line a certificate
    assert lines[1].endswith("urn:ietf:params:acme:error:rejectedIdentifier / detail: Error creating new "
                             "order :: blocked name / status: 400")


@pytest.mark.parametrize("serial", [0xABC, 0x0ABCDEF, 0xFF0102, 0x80, 1, 0x7F00AA11223344556677889900AABBCCDD])
def test_serials_are_shown_as_openssl_prints_them(tmp_path: Path, serial: int) -> None:
    key, cert = tmp_path / "k.pem", tmp_path / "c.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-keyout", str(key), "-out", str(cert), "-subj", "/CN=serial.example",
                    "-set_serial", hex(serial)], check=True, capture_output=True)
    shown = subprocess.run(["openssl", "x509", "-noout", "-serial", "-in", str(cert)],
                           capture_output=True, text=True, check=True).stdout.strip()
    assert shown == f"serial={serial_hex(serial)}"
