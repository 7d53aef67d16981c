"""The parsers that take outside input, each wrapped as `target(data: bytes)`: it returns, or
raises one of the clean errors that parser documents (CLEAN), never anything else.

Shared by the hypothesis tests (tests/fuzz/test_parsers.py, in the default run) and the
atheris scripts (tests/fuzz/atheris_*.py, `python3 build.py fuzz [MINUTES]`).
"""
from __future__ import annotations

import base64
import io
import json
import tempfile
from collections.abc import Callable
from pathlib import Path

from wucme.errors import WucmeError
from wucme.vms.condition import VmsError

#: What every parser may raise: wucme's VMS errors (WucmeError, VmsError, the HTTP client's
#: ProtocolError and ResponseTooLarge, the DER parser's DerError, DCL's signal).
CLEAN: tuple[type[BaseException], ...]


def _clean() -> tuple[type[BaseException], ...]:
    from wucme.core.der import DerError
    from wucme.dclproc.status import DclSignal
    from wucme.http import HttpError

    return (WucmeError, VmsError, HttpError, DerError, DclSignal)


CLEAN = _clean()


def _text(data: bytes) -> str:
    return data.decode("utf-8", "replace")


def http_response(data: bytes) -> None:
    """A CA's (or proxy's) HTTP/1.x response: status line, fields, then a body by its framing
    (Content-Length, chunked with extensions and trailers, or until close)."""
    from wucme.http._wire import framing, read_body, read_head

    fp = io.BufferedReader(io.BytesIO(data))  # type: ignore[arg-type]
    head = read_head(fp)
    read_body(fp, framing("GET", head), 1 << 16)


def problem_document(data: bytes) -> None:
    """An RFC 7807 problem document as a CA sends it with an error status."""
    from wucme.core.problem import AcmeProblem

    p = AcmeProblem.from_body(400, data)
    str(p), p.message()


def acme_json(data: bytes) -> None:
    """A CA's JSON answer as the uacme port decodes it (the 4300-digit integer limit)."""
    from wucme.http import Response
    from wucme.uacme.acme import _reply
    from wucme.uacme.msg import Msg

    class _A:
        log = Msg(0)  # quiet, as a session without -v

        def _keep_nonce(self, resp: object) -> None:
            pass

    _reply(_A(), Response(200, [("Content-Type", "application/json")], data, "https://ca.test/x"))  # type: ignore[arg-type]


def pem_certificates(data: bytes) -> None:
    """A certificate chain in PEM (what a CA returns, what the repository holds)."""
    from wucme import crypto

    crypto.cert_load(data)


def der_structures(data: bytes) -> None:
    """DER TLVs and the RFC 5915 EC private key structure."""
    from wucme.core import der

    for _, content in der.tlvs(data):
        der.oid_text(content)
    der.ec_private(data)


def _as_pem(data: bytes) -> bytes:
    """*data* itself when it is PEM text, else DER wrapped as a PEM certificate (so that the
    fuzzers mutate the certificate, not its base64)."""
    if data.startswith(b"-----"):
        return data
    import base64

    return b"-----BEGIN CERTIFICATE-----\n" + base64.encodebytes(data) + b"-----END CERTIFICATE-----\n"


def certificate_scan(data: bytes) -> None:
    """The repository scan's own reading of a certificate file: the pure Python backend
    (NoCertificate, or ValueError for a chain `cryptography` cannot read, as documented), and
    the native one (native/certscan.c, its own DER parser) giving the same answer."""
    from wucme._native.certscan import NATIVE
    from wucme._native.certscan_pure import NoCertificate, cert_info

    pem = _as_pem(data)
    try:
        want: object = cert_info(pem)
    except (NoCertificate, ValueError) as e:
        want = type(e)
    if NATIVE is None:
        return
    try:
        got: object = NATIVE.cert_info(pem)
    except (NoCertificate, ValueError) as e:
        got = type(e)
    assert got == want, (got, want)


def client_hello(data: bytes) -> None:
    """A TLS ClientHello from anyone who connects to the tls-alpn-01 front end."""
    from wucme.challenge.clienthello import parse_client_hello

    for n in (len(data), len(data) // 2):
        parse_client_hello(data[:n])


def alpn_control(data: bytes) -> None:
    """Lines of ualpn's control protocol (auth IDENT DIGEST / unauth IDENT), read and answered as
    the control server of `wucme alpn` does."""
    from wucme.challenge.alpnauth import AuthTable, handle_command

    table = AuthTable(max_auths=4)
    for line in data.split(b"\n")[:16]:  # as the control server reads them (alpnproxy.py)
        reply = handle_command(table, line.decode("latin-1"))
        reply.encode("ascii")  # what the server sends back


_listener: list[object] = []


def http01_request(data: bytes) -> None:
    """A request head to wucme's http-01 listener (one listener, never started: its parser)."""
    from wucme.challenge.http01 import Http01Listener
    from wucme.challenge.store import ChallengeStore

    if not _listener:
        store = ChallengeStore(Path(tempfile.mkdtemp(prefix="wucme-fuzz-")) / "store")
        _listener.append(Http01Listener(store, "127.0.0.1", 0))
    listener = _listener[0]
    assert isinstance(listener, Http01Listener)
    reply = listener._handle(data, "127.0.0.1:1")
    assert reply.startswith(b"HTTP/1.")


def vms_filespec(data: bytes) -> None:
    """A VMS file specification (logical names, WUCME_HERE, @procedures)."""
    from wucme.vms.filespec import is_vms_spec, parse_filespec

    spec = _text(data)
    is_vms_spec(spec)
    parse_filespec(spec)


def logical_name_table(data: bytes) -> None:
    """A logical name table file as another process may have written it."""
    from wucme.vms.lnm import _parse_table

    for name, entry in _parse_table(data, "system", Path("/fuzz/system.json")).items():
        str(entry), name


_lnm_dir: list[Path] = []


def logical_name_translation(data: bytes) -> None:
    """A system table as another root process may have written it, then translated: every name
    it defines (iteration, search lists, loops) and a file spec on each as a device."""
    import os

    from wucme.vms import lnm
    from wucme.vms.filespec import to_paths

    if not _lnm_dir:
        d = Path(tempfile.mkdtemp(prefix="wucme-fuzz-lnm-"))
        d.chmod(0o755)
        _lnm_dir.append(d)
    table = _lnm_dir[0] / "system.json"
    tmp = table.with_suffix(".new")
    tmp.write_bytes(data)
    tmp.chmod(0o644)
    tmp.replace(table)  # a new inode: the table cache reads it again
    old = {k: os.environ.get(k) for k in ("WUCME_LNM_DIR", "WUCME_LNM_CLUSTER_DIR", lnm.JOB_ENV)}
    os.environ["WUCME_LNM_DIR"] = str(_lnm_dir[0])
    os.environ.pop("WUCME_LNM_CLUSTER_DIR", None)
    os.environ.pop(lnm.JOB_ENV, None)
    try:
        try:
            names = list(lnm._load("system"))[:8]
        except CLEAN:
            return
        for name in names:
            for call in (lambda: lnm.translate(name, "system"), lambda: to_paths(f"{name}:[A]B.C")):
                try:
                    call()
                except CLEAN:
                    pass
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def dcl_command_line(data: bytes) -> None:
    """A wucme command line (DCL syntax: qualifiers, lists, quoting)."""
    from wucme.verbs import parse_command

    parse_command(_text(data).split(" ")[:20])


def dcl_procedure(data: bytes) -> None:
    """A DCL procedure's records and expressions (lexing and evaluation, nothing executed)."""
    from wucme.dclproc.expr import evaluate
    from wucme.dclproc.scan import load_lines

    text = _text(data)
    load_lines(text)
    evaluate(text.split("\n", 1)[0][:500], lambda name: None, lambda name, args, raw: "")


def mail_address(data: bytes) -> None:
    """WUCME_MAIL targets (VMS MAIL syntax) and WUCME_SMTP."""
    from wucme.reporting.mail import check_address, parse_smtp, parse_target

    text = _text(data)
    for item in text.split(",")[:8]:
        try:
            check_address(parse_target(item, "example.org"))
        except WucmeError:
            pass
    parse_smtp(text)


TARGETS: dict[str, Callable[[bytes], None]] = {f.__name__: f for f in (
    http_response, problem_document, acme_json, pem_certificates, der_structures,
    certificate_scan, client_hello, alpn_control, http01_request, vms_filespec,
    logical_name_table, logical_name_translation, dcl_command_line, dcl_procedure, mail_address)}


def run(name: str, data: bytes) -> None:
    """One input to one target: a clean error is a pass."""
    try:
        TARGETS[name](data)
    except CLEAN:
        pass


#: A real certificate (EC P-256, CN and SAN of two names and an address, an AKI), made once.
CERTIFICATE = """-----BEGIN CERTIFICATE-----
MIIBbzCCARagAwIBAgIEEjSrzTAKBggqhkjOPQQDAjASMRAwDgYDVQQDDAdGdXp6
IENBMB4XDTI2MDEwMTAwMDAwMFoXDTI2MDQwMTAwMDAwMFowGjEYMBYGA1UEAwwP
d3d3LmV4YW1wbGUub3JnMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEZ4DF/HAn
XixwYaDnh3uxdN6t65iHAn8/qDZUFYun9Qw8uow0vDXSDoH3MKwce9bWYalC+Qxq
nKVcUS+eSgASZqNSMFAwLQYDVR0RBCYwJIIPd3d3LmV4YW1wbGUub3JnggtleGFt
cGxlLm9yZ4cEwAACATAfBgNVHSMEGDAWgBSspPOq0fbMfpUr0GCMESbENeYqrTAK
BggqhkjOPQQDAgNHADBEAiAxBwD69qrjfeKZHoKzI7hQgr7zS3Rz2kZFfIMv38t4
2AIgWrqtzbWOTduEJUOXiJsKXWDtb4+WzKzvj6OdF7E+Bck=
-----END CERTIFICATE-----
"""

# Seeds: one well-formed input per target, which the fuzzers mutate.
SEEDS: dict[str, list[bytes]] = {
    "http_response": [b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}",
                      b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2;x=y\r\n{}\r\n0\r\nA: b\r\n\r\n"],
    "problem_document": [json.dumps({"type": "urn:ietf:params:acme:error:malformed", "detail": "x",
                                     "subproblems": [{"type": "urn:ietf:params:acme:error:rejectedIdentifier",
                                                      "identifier": {"type": "dns", "value": "a"}}]}).encode()],
    "acme_json": [b'{"newNonce": "https://ca/n", "meta": {"profiles": {"a": "b"}}}'],
    "pem_certificates": [CERTIFICATE.encode(), b"-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n"],
    "der_structures": [bytes.fromhex("30770201010420") + b"\x01" * 32 + bytes.fromhex("a00a06082a8648ce3d030107")],
    "certificate_scan": [base64.b64decode("".join(CERTIFICATE.splitlines()[1:-1])), CERTIFICATE.encode()],
    "client_hello": [bytes.fromhex("160301002e0100002a0303") + b"\0" * 32 + bytes.fromhex("000002130101000000")],
    "alpn_control": [b"auth www.example.org 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\nunauth www.example.org\n"],
    "http01_request": [b"GET /.well-known/acme-challenge/abc HTTP/1.1\r\nHost: x\r\n\r\n"],
    "vms_filespec": [b"WASD_ROOT:[LOCAL.WUCME]WUCME_C_X.PEM;3", b"[-.A]B.C"],
    "logical_name_table": [b'{"table": "LNM$SYSTEM_TABLE", "names": {"WUCME_CA": {"values": ["staging"]}}}'],
    "logical_name_translation": [json.dumps({"table": "LNM$SYSTEM_TABLE", "names": {
        "WUCME_A": {"values": ["WUCME_B", "/srv/a"]}, "WUCME_B": {"values": ["WUCME_C:[X]", "WUCME_A"]},
        "WUCME_C": {"values": ["/srv/c"], "attributes": ["CONCEALED"]}}}).encode()],
    "dcl_command_line": [b"issue /challenge=http-01 www.example.org,example.org", b'manage /output=json'],
    "dcl_procedure": [b'$ x = "a" + f$string(1) .eqs. "a1" .and. %X10 .gt. 3\n$ exit\n'],
    "mail_address": [b'SYSTEM,smtp%"a@b.example",c@d.example', b"[::1]:25"],
}
