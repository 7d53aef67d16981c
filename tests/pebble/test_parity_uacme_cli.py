"""uacme's command line, read and answered as uacme 1.7.4 does (issue 11, points 6 and 8-11)."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from harness.pebble import Pebble, free_port

from .uacme_parity import PARITY, Tool, expect, new_accounts, serial

pytestmark = PARITY

#: Option values and whether uacme takes them: -r and -l with strtol(s, 0), -b and -d base 10.
NUMBERS = [("-r", "01"), ("-r", "0x1"), ("-r", "010"), ("-r", "08"), ("-r", " 2"), ("-r", "2 "),
           ("-d", "010"), ("-d", "0x10"), ("-d", "+5"), ("-d", "0"), ("-b", "02048"),
           ("-b", "0x800"), ("-b", "4294969344"), ("-l", "0x1"), ("-l", "010"), ("-l", "0"),
           ("-l", "aa::bb"), ("-l", "aa:b")]


@pytest.mark.parametrize("opt, value", NUMBERS)
def test_numbers_are_taken_or_refused_as_uacme_does(tools: tuple[Tool, Tool], opt: str,
                                                    value: str) -> None:
    """With no action after the options, uacme says why it refuses an option value, or
    shows its usage once every option was taken: both tools agree on each value."""
    verdicts = {}
    for t in tools:
        r = t.bare(opt, value)
        expect(r, 2, t.name)
        verdicts[t.name] = "refused" if "usage:" not in r.stderr + r.stdout else "taken"
    assert verdicts["wucme"] == verdicts["uacme"], f"{opt} {value!r}: {verdicts}"


def test_revoke_reason_in_hex(tools: tuple[Tool, Tool], pebble: Pebble,
                              hook_scripts: dict[str, str]) -> None:
    """-r 0x4 is reason 4 (superseded) for both."""
    new_accounts(*tools)
    for t in tools:
        expect(t("-h", hook_scripts["http-01"], "issue", "rv.example.org"), 0, t.name)
        cert = t.confdir / "rv.example.org" / "cert.pem"
        number = serial(cert)
        expect(t("-r", "0x4", "revoke", str(cert)), 0, t.name)
        assert pebble.cert_status(number)["Status"] == "Revoked"


def test_identifiers_keep_their_case_in_directory_names(tools: tuple[Tool, Tool],
                                                        hook_scripts: dict[str, str]) -> None:
    """issue MiXed.Example.org: both write MiXed.Example.org/ and private/MiXed.Example.org/,
    and wucme in uacme's confdir finds uacme's certificate current (exit 1), nothing new made."""
    u, w = tools
    new_accounts(u, w)
    name = "MiXed.Example.org"
    for t in tools:
        expect(t("-h", hook_scripts["http-01"], "issue", name, "Alt.Example.org"), 0, t.name)
        assert sorted(p.name for p in t.confdir.iterdir()) == [name, "private"], t.name
        assert (t.confdir / "private" / name / "key.pem").exists()
    before = sorted(str(p) for p in u.confdir.rglob("*"))
    expect(w("-h", hook_scripts["http-01"], "issue", name, "Alt.Example.org", confdir=u.confdir),
           1, "wucme on uacme's confdir")
    assert sorted(str(p) for p in u.confdir.rglob("*")) == before


def test_ipv6_written_any_way_keeps_its_directory(tools: tuple[Tool, Tool],
                                                  hook_scripts: dict[str, str]) -> None:
    """An IPv6 address written non-canonically names the directories as written."""
    new_accounts(*tools)
    ip = "0:0:0:0:0:0:0:1"
    for t in tools:
        expect(t("-h", hook_scripts["decline-all"], "issue", ip), 2, t.name)
        assert sorted(p.name for p in t.confdir.iterdir()) == [ip, "private"], t.name
        assert sorted(p.name for p in (t.confdir / "private").iterdir()) == [ip, "key.pem"]


def write_csr(path: Path, names: list[str]) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    from wucme import crypto

    path.parent.mkdir(parents=True, exist_ok=True)
    der = crypto.csr_gen(names, False, False, crypto.key_gen("EC", 256))
    path.write_bytes(x509.load_der_x509_csr(der).public_bytes(serialization.Encoding.PEM))


@pytest.mark.parametrize("csr", ["dir.d/req", "dir.d/req.csr", "plain/req"])
def test_certificate_of_a_csr_goes_where_uacme_puts_it(tools: tuple[Tool, Tool], tmp_path: Path,
                                                       hook_scripts: dict[str, str],
                                                       csr: str) -> None:
    """The certificate is the CSR's path up to its last dot, then -cert.pem: the last dot of
    the whole path, so dir.d/req gives dir-cert.pem."""
    new_accounts(*tools)
    made = {}
    for t in tools:
        root = tmp_path / f"csr-{t.name}"
        write_csr(root / csr, ["csr.example.org"])
        expect(t("-h", hook_scripts["http-01"], "issue", str(root / csr)), 0, t.name)
        made[t.name] = sorted(str(p.relative_to(root)) for p in root.rglob("*"))
    assert made["wucme"] == made["uacme"]
    assert any(p.endswith("-cert.pem") for p in made["uacme"])


def test_current_certificate_with_the_ca_down(tools: tuple[Tool, Tool],
                                              hook_scripts: dict[str, str]) -> None:
    """uacme 1.7.4 reads the certificate before it contacts the CA: a current one means
    exit 1 at once, CA or not.  uacme HEAD fetches the directory first (ARI needs its
    renewalInfo URL) and so fails with the CA down (exit 2); wucme follows HEAD."""
    new_accounts(*tools)
    for t in tools:
        expect(t("-h", hook_scripts["http-01"], "issue", "down.example.org"), 0, t.name)
    down = f"https://127.0.0.1:{free_port()}/dir"
    u, w = tools
    expect(u("-o", "-h", hook_scripts["http-01"], "issue", "down.example.org",
             directory_url=down), 1, "uacme 1.7.4")
    r = w("-o", "-h", hook_scripts["http-01"], "issue", "down.example.org", directory_url=down)
    expect(r, 2, "wucme (as uacme HEAD)")
    assert "NETERR" in r.stderr and down in r.stderr


def test_version_goes_to_stderr_and_options_act_in_order(tools: tuple[Tool, Tool]) -> None:
    """-V: the version on stderr, exit 2; -V -Z shows the version (-V acts before -Z is met),
    -Z -V the usage."""
    for t in tools:
        r = t.bare("-V")
        expect(r, 2, t.name)
        assert r.stdout == "" and r.stderr.startswith(f"{t.name}: version "), t.name
        assert "GNU General Public License" in r.stderr
        r = t.bare("-V", "-Z")
        expect(r, 2, t.name)
        assert "version" in r.stderr and "usage:" not in r.stderr, t.name
        r = t.bare("-Z", "-V")
        expect(r, 2, t.name)
        assert "usage:" in r.stderr and ": version" not in r.stderr, t.name
        r = t.bare("-d", "0", "-V")
        expect(r, 2, t.name)
        assert "DAYS must be a positive integer" in r.stderr and "version" not in r.stderr


#: uacme's -v lines that wucme writes too, in the same words.
SHARED_LINES = ("created directory ", "loading key from ", " not found", "generating new ",
                "key saved to ", "fetching directory at ", " does not exist",
                "checking existence and expiration of ", " expires in ", "skipping ",
                "generating certificate request", "creating new account at ",
                "account created at ", "retrieving account at ", "account location: ",
                "creating new order at ", "order location: ", "retrieving authorization at ",
                "starting challenge at ", "finalizing order at ", "retrieving certificate at ",
                "terms at ")


def shared_lines(r: subprocess.CompletedProcess[str], t: Tool) -> list[str]:
    out = []
    for line in r.stderr.splitlines():
        text = line.split(": ", 1)[1] if line.startswith(f"{t.name}: ") else ""
        if any(s in text for s in SHARED_LINES):
            text = text.replace(str(t.confdir), "CONFDIR")
            out.append(re.sub(r"https://\S+?/([a-zA-Z-]+)/\S+", r"URL/\1/ID", text))
    return sorted(out)


def test_verbose_lines_are_uacme_s(tools: tuple[Tool, Tool], hook_scripts: dict[str, str]) -> None:
    """-v: the lines about directories, keys, the account and the order are uacme's,
    word for word (the order of fetching differs: uacme HEAD fetches the directory first)."""
    seen: dict[str, list[list[str]]] = {}
    for t in tools:
        seen[t.name] = [shared_lines(t(*args), t) for args in (
            ("-y", "new"), ("-h", hook_scripts["http-01"], "issue", "v.example.org"),
            ("-h", hook_scripts["http-01"], "issue", "v.example.org"))]
    # Nothing due: uacme 1.7.4 never contacts the CA, uacme HEAD and wucme fetch the directory.
    fetch = [line for line in seen["wucme"][2] if line.startswith("fetching directory at ")]
    assert len(fetch) == 1
    seen["wucme"][2].remove(fetch[0])
    assert seen["wucme"] == seen["uacme"]
    assert any("generating new 2048-bit RSA key" in line for line in seen["uacme"][0])
