"""The WUCME_* logical names: each read here, when it is used, and checked here.

Nothing is cached: every function translates its name anew (wucme.vms.lnm: the process table,
then the system and cluster tables), so a DEFINE takes effect in a running agent, as the seed
says of WUCME_VERBOSE.  A value that would make a verb do something else than asked (a bad CA
URL, challenge type, port, key size, WUCME_DAYS) is refused with a VMS message naming the
logical and its value (`%WUCME-E-BADVALUE, WUCME_CA 'https://' names no host`, exit 2); a value
that only tunes the agent (schedule, jitter, workers, timeouts) falls back to its default, so a
typo never stops the renewals.

The repository and the challenge store (WUCME_HERE, WUCME_CHALLENGES, WUCME_STORE_DB,
WUCME_LOCK_DB) are read in wucme.locations, re-exported here: the CGI answer to a challenge
imports that module alone.  Read elsewhere, each in one place below this module: WUCME_KEEP (wucme.vms.files, the version
limit), WUCME_LNM_DIR (wucme.vms.lnm, where the tables are), WUCME_NO_NATIVE (wucme._native);
and the reporting targets, read and checked together by their configurations
(wucme.reporting.mail: WUCME_MAIL, _MAIL_FROM, _MAIL_DOMAIN, _SMTP, _SMTP_STARTTLS;
wucme.reporting.opcom: WUCME_OPCOM, _SYSLOG, _SYSLOG_FACILITY, _SYSLOG_FORMAT).

This module imports only wucme.vms and wucme.errors at load time (the idle agent imports it):
the HTTP and crypto layers it hands values to are imported when asked for.
"""
from __future__ import annotations

import datetime as _dt
import math
import re
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from wucme.errors import UsageError
from wucme.locations import (DEFAULT_LINUX_HERE, bad_value as _bad, challenges_dir, default_here, here_path,
                             lock_db, store_db)
from wucme.vms.lnm import trnlnm

if TYPE_CHECKING:
    from wucme.http import HttpConfig

#: The CAs WUCME_CA (and uacme's -s) names by word: Let's Encrypt.
PRODUCTION_URL = "https://acme-v02.api.letsencrypt.org/directory"
STAGING_URL = "https://acme-staging-v02.api.letsencrypt.org/directory"

CHALLENGES = ("tls-alpn-01", "http-01")
DEFAULT_ALPN = "443"
#: WUCME_ALPN value meaning: do not listen; the web server asks the ACME_TLS_1 agent (as WASD does).
ALPN_AGENT = "AGENT"
DEFAULT_HTTP_PORT = 80
DEFAULT_WORKERS = 4
DEFAULT_LOAD_TIMEOUT = 60.0
DEFAULT_SETTLE = 10.0
DEFAULT_WARN_DAYS = 7.0
DEFAULT_SCHEDULE = _dt.time(0, 20)
_DAY_SECONDS = 86400.0
_HHMM = re.compile(r"\s*([01]?[0-9]|2[0-3]):([0-5][0-9])(?::([0-5][0-9]))?\s*")


def _text(name: str) -> str:
    """The stripped translation of *name*, "" when undefined."""
    return (trnlnm(name) or "").strip()


# --- where things are (the repository and the challenge store: wucme.locations) ---------------

def alpn_socket() -> str:
    """The `wucme alpn` control socket: WUCME_ALPN_SOCKET, else /run/wucme-alpn.sock."""
    return trnlnm("WUCME_ALPN_SOCKET") or "/run/wucme-alpn.sock"


def alpn_pidfile() -> str:
    """The `wucme alpn` pidfile: WUCME_ALPN_PIDFILE, else /run/wucme-alpn.pid."""
    return trnlnm("WUCME_ALPN_PIDFILE") or "/run/wucme-alpn.pid"


# --- logging ---------------------------------------------------------------------------------

def verbosity() -> int:
    """WUCME_VERBOSE: undefined (or empty) 0; a number is the level; anything else (`*`) is 1."""
    v = _text("WUCME_VERBOSE")
    if not v:
        return 0
    return int(v) if v.isdigit() else 1


# --- the CA and the way to it ------------------------------------------------------------------

#: Host names that are this machine: a plain-http CA there never crosses a network.
_LOOPBACK_NAMES = ("localhost", "localhost.", "ip6-localhost")


def is_loopback_host(host: str) -> bool:
    """127.0.0.0/8, ::1 or localhost (a plain-http CA is accepted there without WUCME_ALLOW_HTTP_CA)."""
    import ipaddress

    h = host.strip("[]").lower()
    if h in _LOOPBACK_NAMES or h.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(h).is_loopback
    except ValueError:
        return False


def check_url(name: str, value: str, schemes: tuple[str, ...] = ("https", "http")) -> str:
    """A URL given by logical name *name*, checked: one of *schemes*, a host, a port that is a
    port, no space or control character (a CR LF would end up in a request head)."""
    from urllib.parse import urlsplit

    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in value):
        raise _bad(name, value, "contains a space or a control character")
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        raise _bad(name, value, "is not a URL (bad host or port)") from None
    if parts.scheme.lower() not in schemes:
        raise _bad(name, value, f"must be an {' or '.join(schemes)} URL")
    if not parts.hostname:
        raise _bad(name, value, "names no host")
    if port == 0:
        raise _bad(name, value, "has port 0")
    return value


def ca_directory() -> str:
    """WUCME_CA: a directory URL, or PRODUCTION / STAGING for Let's Encrypt (default production).

    Plain http only to a loopback address (127.0.0.0/8, ::1, localhost) or with
    WUCME_ALLOW_HTTP_CA defined: every JWS would otherwise cross the network unprotected
    (RFC 8555 §6.1 requires HTTPS).  `wucme --uacme -a` takes any URL, as uacme does."""
    v = _text("WUCME_CA")
    if not v or v.upper() == "PRODUCTION":
        return PRODUCTION_URL
    if v.upper() == "STAGING":
        return STAGING_URL
    if not v.lower().startswith(("https://", "http://")):
        raise _bad("WUCME_CA", v, "is neither a directory URL nor PRODUCTION or STAGING")
    check_url("WUCME_CA", v)
    from urllib.parse import urlsplit

    parts = urlsplit(v)
    if (parts.scheme.lower() == "http" and not is_loopback_host(parts.hostname or "")
            and not trnlnm("WUCME_ALLOW_HTTP_CA")):
        raise _bad("WUCME_CA", v, "is plain http to another machine: use https "
                   "(or define WUCME_ALLOW_HTTP_CA to send the requests unprotected)")
    return v


def transport_name() -> str:
    """WUCME_HTTP: `builtin` (wucme's own HTTP client, the default) or `requests`."""
    v = _text("WUCME_HTTP").lower() or "builtin"
    if v not in ("builtin", "wucme", "own", "requests"):
        raise _bad("WUCME_HTTP", v, "must be BUILTIN or REQUESTS")
    return v


def http_config() -> HttpConfig:
    """The transport's trust and proxy: WUCME_CA_BUNDLE, WUCME_PROXY (uacme's UACME_CAINFO,
    UACME_CAPATH and UACME_PROXY are honoured too), and the proxy variables libcurl reads
    (https_proxy, all_proxy, no_proxy, ...: wucme.http.proxyenv), which WUCME_PROXY overrides."""
    from wucme.http import HttpConfig, ProxyRules

    proxy = trnlnm("WUCME_PROXY") or trnlnm("UACME_PROXY")
    rules = ProxyRules.from_environ(proxy)
    for url in ("https://ca.invalid/", "http://ca.invalid/"):
        try:
            rules.for_url(url)
        except ValueError as e:
            raise _bad("WUCME_PROXY" if trnlnm("WUCME_PROXY") else "the proxy", proxy or "",
                       f"is not a proxy: {e}") from None
    return HttpConfig(
        ca_bundle=trnlnm("WUCME_CA_BUNDLE") or trnlnm("UACME_CAINFO"),
        ca_path=trnlnm("UACME_CAPATH"),
        proxy=proxy,
        proxy_rules=rules,
        deadline=http_deadline(),
    )


DEFAULT_HTTP_DEADLINE = 120.0
DEFAULT_PASS_DEADLINE = 3600.0


def http_deadline() -> float:
    """WUCME_HTTP_DEADLINE: seconds one HTTP request may take in all, connect, head and body
    (default 120): a CA that answers one byte at a time fails the request, not the agent."""
    return _seconds("WUCME_HTTP_DEADLINE", DEFAULT_HTTP_DEADLINE)


def pass_deadline() -> float:
    """WUCME_PASS_DEADLINE: seconds a renewal pass may take (default 3600); certificates not
    done by then fail, and the next pass runs on schedule."""
    return _seconds("WUCME_PASS_DEADLINE", DEFAULT_PASS_DEADLINE)


def poll_timeout() -> float | None:
    """WUCME_POLL_TIMEOUT: seconds each polling loop may take (at least 1), None when undefined."""
    v = _text("WUCME_POLL_TIMEOUT")
    if not v:
        return None
    try:
        seconds = float(v)
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds):
        raise UsageError(f"WUCME_POLL_TIMEOUT must be a number of seconds, not {v!r}",
                         ident="BADVALUE")
    return max(1.0, seconds)


def eab() -> str | None:
    """WUCME_EAB: external account binding credentials, `KEYID:KEY[:BITS]` (checked by the
    uacme port's eab_parse when used)."""
    return _text("WUCME_EAB") or None


# --- keys ---------------------------------------------------------------------------------------

def key_spec() -> tuple[str, int]:
    """WUCME_KEY_TYPE (`EC` or `RSA`, default EC) and WUCME_KEY_BITS (EC 256/384, RSA 2048..8192)."""
    from wucme.crypto import key_bits_problem

    ktype = (_text("WUCME_KEY_TYPE") or "EC").upper()
    if ktype not in ("EC", "RSA"):
        raise UsageError(f"WUCME_KEY_TYPE {ktype!r} must be EC or RSA", ident="BADKEYTYPE")
    raw = _text("WUCME_KEY_BITS")
    if raw and not raw.isdigit():
        raise UsageError(f"WUCME_KEY_BITS {raw!r} must be a number of bits", ident="BADKEYTYPE")
    bits = int(raw) if raw else (256 if ktype == "EC" else 2048)
    problem = key_bits_problem(ktype, bits)
    if problem:
        raise UsageError(f"WUCME_KEY_BITS {problem}", ident="BADKEYTYPE")
    return ktype, bits


# --- challenges ---------------------------------------------------------------------------------

def parse_hostport(value: str, what: str, default_host: str = "") -> tuple[str, int]:
    """`[addr:]port` (an IPv6 address in brackets: `[::1]:443`); *what* names it in the error.
    No address: *default_host*, by default "" (every address of both families)."""
    v = value.strip()
    host = default_host
    if v.startswith("["):
        host, _, v = v[1:].partition("]")
        v = v.lstrip(":")
    elif ":" in v:
        host, _, v = v.rpartition(":")
    if not v.isdigit() or not 0 < int(v) < 65536 or (not host and value.strip()[:1] in "[:"):
        raise UsageError(f"{what} {value!r} must be [addr:]port", ident="BADPORT")
    return host, int(v)


class ChallengeConfig(NamedTuple):
    """WUCME_CHALLENGE and where wucme answers it (`alpn` None: the server's ACME_TLS_1 agent).
    A NamedTuple, not a frozen dataclass: a sixth of the cost at every start."""

    type: str
    http01: tuple[str, int] | None = None
    alpn: tuple[str, int] | None = ("", 443)


def challenge_type(raw: str | None, name: str = "WUCME_CHALLENGE") -> str:
    """A challenge type as wucme answers it: tls-alpn-01 or http-01 (any case)."""
    value = (raw or "").lower()
    if value not in CHALLENGES:
        raise UsageError(f"{name} {value!r} must be tls-alpn-01 or http-01", ident="BADCHALLENGE")
    return value


def challenge_config(type: str | None = None) -> ChallengeConfig:
    """WUCME_CHALLENGE (tls-alpn-01 or http-01), or *type* when given, WUCME_HTTP01 and WUCME_ALPN
    (`[addr:]port`, or AGENT for tls-alpn-01 answered by the web server's ACME_TLS_1 agent)."""
    raw = challenge_type(type or _text("WUCME_CHALLENGE") or "tls-alpn-01")
    http01 = _text("WUCME_HTTP01")
    alpn = _text("WUCME_ALPN") or DEFAULT_ALPN
    return ChallengeConfig(raw, parse_hostport(http01, "WUCME_HTTP01") if http01 else None,
                           None if alpn.upper() == ALPN_AGENT else parse_hostport(alpn, "WUCME_ALPN"))


def renewal_challenge() -> str | None:
    """WUCME_RENEW_CHALLENGE: the challenge type every renewal uses, whatever each certificate
    recorded; undefined (the default), each certificate is renewed the way it was issued."""
    raw = _text("WUCME_RENEW_CHALLENGE")
    return challenge_type(raw, "WUCME_RENEW_CHALLENGE") if raw else None


def http01_listen() -> tuple[str, int]:
    """Where `check /HTTP01` listens: WUCME_HTTP01, else port 80 on every address."""
    return parse_hostport(_text("WUCME_HTTP01") or str(DEFAULT_HTTP_PORT), "WUCME_HTTP01")


def http01_probe() -> tuple[str, int, str]:
    """(host, port, what) the admin page's http-01 check asks: WUCME_HTTP01's listener when
    defined, else this server's plain http port (WUCME_HTTP_PORT, default 80), on loopback."""
    spec = _text("WUCME_HTTP01")
    if spec:
        host, port = parse_hostport(spec, "WUCME_HTTP01", default_host="127.0.0.1")
        what = "wucme's own http-01 responder (WUCME_HTTP01)"
    else:
        host, port = parse_hostport(_text("WUCME_HTTP_PORT") or str(DEFAULT_HTTP_PORT),
                                    "WUCME_HTTP_PORT", default_host="127.0.0.1")
        what = "this web server's port 80 mapping"
    if host in ("0.0.0.0", "", "*"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return host, port, what


# --- the renewal pass ---------------------------------------------------------------------------

def workers() -> int:
    """WUCME_WORKERS: certificates renewed at once (1..64, default 4)."""
    raw = _text("WUCME_WORKERS")
    return max(1, min(int(raw), 64)) if raw.isdigit() else DEFAULT_WORKERS


def fixed_days() -> float | None:
    """WUCME_DAYS: renew when fewer days than this are left; None (undefined): the CA's renewal
    window, else a third of the lifetime.  A value that is not a number of days (negative, not
    a number) is refused (BADVALUE): read silently as "never due", it would let certificates
    expire."""
    raw = _text("WUCME_DAYS")
    if not raw:
        return None
    try:
        days = float(raw)
    except ValueError:
        days = math.nan
    if not math.isfinite(days) or days < 0:
        raise _bad("WUCME_DAYS", raw, "must be a number of days, 0 or more")
    return days


def warn_days() -> float:
    """WUCME_WARN_DAYS (a number of days, fractions allowed), else DEFAULT_WARN_DAYS."""
    raw = _text("WUCME_WARN_DAYS")
    try:
        days = float(raw) if raw else DEFAULT_WARN_DAYS
    except ValueError:
        return DEFAULT_WARN_DAYS
    return days if math.isfinite(days) and days >= 0 else DEFAULT_WARN_DAYS


# --- monitoring -------------------------------------------------------------------------------

def prometheus_file() -> Path | None:
    """WUCME_PROMETHEUS_FILE: the node_exporter textfile the renewal pass rewrites, None when
    undefined.  A relative name is refused (the agent's working directory is not the admin's)."""
    value = _text("WUCME_PROMETHEUS_FILE")
    if not value:
        return None
    path = Path(value)
    if not path.is_absolute():
        raise UsageError(f"WUCME_PROMETHEUS_FILE {value!r} must be an absolute file name", ident="BADVALUE")
    return path


# --- the load action ----------------------------------------------------------------------------

def load_command() -> str | None:
    """WUCME_LOAD: the command that (re)loads the certificates, None when undefined or blank."""
    return _text("WUCME_LOAD") or None


def _seconds(name: str, default: float) -> float:
    try:
        v = float(_text(name))
    except ValueError:
        return default
    return v if 0 < v < _DAY_SECONDS else default


def load_timeout() -> float:
    """WUCME_LOAD_TIMEOUT: seconds WUCME_LOAD may run (default 60)."""
    return _seconds("WUCME_LOAD_TIMEOUT", DEFAULT_LOAD_TIMEOUT)


def settle_time() -> float:
    """WUCME_LOAD_SETTLE: seconds the handshake check keeps trying (default 10)."""
    return _seconds("WUCME_LOAD_SETTLE", DEFAULT_SETTLE)


class ServiceSpecError(UsageError):
    """An entry of WUCME_SERVICES that does not parse."""

    ident = "BADSERVICE"


class Service(NamedTuple):
    """One TLS endpoint to check: connect to host:port, send `name` as SNI."""

    name: str
    host: str
    port: int

    def __str__(self) -> str:
        h = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.name}@{h}:{self.port}" if self.name != self.host else f"{h}:{self.port}"


def parse_services(value: str | None) -> list[Service]:
    """WUCME_SERVICES: `host:port`, `name@host:port`, `name@[::1]:port`, comma-separated."""
    from wucme.core.ident import is_ip

    out: list[Service] = []
    for item in (value or "").split(","):
        item = item.strip()
        if not item:
            continue
        name, at, addr = item.rpartition("@")
        if not at:
            name, addr = "", item
        if addr.startswith("["):
            host, sep, rest = addr[1:].partition("]")
            port_s = rest[1:] if rest.startswith(":") else ""
            if not sep:
                raise ServiceSpecError(f"WUCME_SERVICES entry {item!r}: no closing ]")
        else:
            host, _, port_s = addr.rpartition(":")
        if not host or not port_s.isdigit() or not 0 < int(port_s) < 65536:
            raise ServiceSpecError(f"WUCME_SERVICES entry {item!r}: not [name@]host:port")
        name = (name or host).lower().rstrip(".")
        if is_ip(name):
            raise ServiceSpecError(f"WUCME_SERVICES entry {item!r}: give the host name as name@{addr} "
                                   "(SNI cannot carry an address)")
        out.append(Service(name, host, int(port_s)))
    return out


def services() -> list[Service]:
    """WUCME_SERVICES, parsed (ServiceSpecError for an entry that does not parse)."""
    return parse_services(trnlnm("WUCME_SERVICES"))


# --- the agent ----------------------------------------------------------------------------------

def schedule_time(value: str | None = None) -> _dt.time:
    """WUCME_SCHEDULE ("HH:MM" or "HH:MM:SS", local time; or *value*), else 00:20.  A malformed
    value falls back to the default rather than stopping the renewals."""
    raw = trnlnm("WUCME_SCHEDULE") if value is None else value
    m = _HHMM.fullmatch(raw or "")
    if not m:
        return DEFAULT_SCHEDULE
    return _dt.time(int(m.group(1)), int(m.group(2)), int(m.group(3) or 0))


def jitter_seconds(value: str | None = None) -> float:
    """WUCME_JITTER (or *value*): at most this many seconds added to the daily time (default 0,
    at most a day)."""
    raw = (trnlnm("WUCME_JITTER") if value is None else value) or ""
    try:
        j = float(raw.strip())
    except ValueError:
        return 0.0
    return min(max(j, 0.0), _DAY_SECONDS - 1) if j == j else 0.0  # NaN: 0


def always_active() -> bool:
    """WUCME_ACTIVE defined (any value): this system manages the repository without the lock."""
    return bool(trnlnm("WUCME_ACTIVE"))


#: WUCME_CLUSTER_MODE's values: one elected agent renews everything (the seed's wuCME-active),
#: or every node's agent runs its pass and each certificate goes to whoever locks it first.
CLUSTER_MODES = ("ACTIVE", "SHARED")


def cluster_mode() -> str:
    """WUCME_CLUSTER_MODE: `ACTIVE` (default, undefined or blank) or `SHARED` (docs/cluster.md,
    "Shared renewals"); any other value is BADVALUE, never a silent fallback: the agents of one
    repository must agree on how they share it."""
    raw = _text("WUCME_CLUSTER_MODE").upper()
    if not raw:
        return "ACTIVE"
    if raw not in CLUSTER_MODES:
        raise _bad("WUCME_CLUSTER_MODE", raw, "must be ACTIVE or SHARED")
    return raw


def hook_timeout() -> float | None:
    """WUCME_HOOK_TIMEOUT: seconds a hook program may run, or None (undefined): wait for it, as
    uacme does (a manual dns-01 hook may wait for the operator)."""
    value = trnlnm("WUCME_HOOK_TIMEOUT")
    if not value:
        return None
    try:
        t = float(value)
    except ValueError:
        t = -1.0
    if not t > 0:
        raise UsageError(f"WUCME_HOOK_TIMEOUT must be a positive number of seconds, not {value!r}",
                         ident="BADVALUE")
    return t


def hook_order() -> str:
    """WUCME_HOOK_ORDER: WUCME (default; hooks one at a time, challenges validated together) or
    UACME (uacme's sequence, one authorization after another)."""
    value = (trnlnm("WUCME_HOOK_ORDER") or "WUCME").strip().upper()
    if value not in ("WUCME", "UACME"):
        raise UsageError(f"WUCME_HOOK_ORDER must be WUCME or UACME, not {value!r}", ident="BADVALUE")
    return value.lower()
