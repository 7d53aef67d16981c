"""`wucme --uacme ...`: uacme's command line, option for option (port of uacme.c:main()).

Same options, configuration directory layout, file names, modes and exit
codes (0 done, 1 certificate still current, 2 failure), so a directory written
by uacme works here and the other way round.
"""
from __future__ import annotations

import getopt
import os
import stat
import sys
import time
from typing import Any

from wucme import UACME_VERSION, __version__, crypto
from wucme.core.ident import validate_identifiers
from wucme.errors import FileError, UsageError, WucmeError
from wucme.session import open_session
from wucme.settings import hook_order, hook_timeout
from wucme.uacme.msg import Msg
from wucme.vms.condition import format_message
from wucme.uacme import account as acct
from wucme.uacme.acme import PRODUCTION_URL, STAGING_URL, AcmeSession, acme_bootstrap
from wucme.uacme.ari import ari_replaces
from wucme.uacme.cert import cert_issue, cert_revoke, cert_valid
from wucme.uacme.files import link_backup

DEFAULT_CONFDIR = "/etc/ssl/uacme"
#: uacme creates keys under umask 0377: owner read only.
KEY_MODE = 0o400

#: uacme's options (uacme.c main()): short letter, long name, whether it takes an argument.
OPTIONS = [("a", "acme-url", True), ("b", "bits", True), ("c", "confdir", True),
           ("d", "days", True), ("e", "eab", True), ("f", "force", False), ("?", "help", False),
           ("h", "hook", True), ("i", "no-ari", False), ("k", "rotate-key", False),
           ("l", "alternate", True), ("m", "must-staple", False), ("n", "never-create", False),
           ("o", "no-ocsp", False), ("p", "profile", True), ("r", "reason", True),
           ("s", "staging", False), ("t", "type", True), ("v", "verbose", False),
           ("V", "version", False), ("y", "yes", False)]
SHORT = "".join(c + (":" if arg else "") for c, _, arg in OPTIONS)
LONG = [name + ("=" if arg else "") for _, name, arg in OPTIONS]
_LETTER = {f"--{name}": c for c, name, _ in OPTIONS} | {f"-{c}": c for c, _, _ in OPTIONS}

USAGE = """usage: wucme --uacme [-a|--acme-url URL] [-b|--bits BITS] [-c|--confdir DIR]
\t[-d|--days DAYS] [-e|--eab KEYID:KEY[:BITS]] [-f|--force] [-h|--hook PROG]
\t[-i|--no-ari] [-k|--rotate-key] [-l|--alternate [N | SHA256]]
\t[-m|--must-staple] [-n|--never-create] [-o|--no-ocsp] [-p|--profile PROFILE]
\t[-r|--reason CODE] [-s|--staging] [-t|--type RSA | EC] [-v|--verbose ...]
\t[-V|--version] [-y|--yes] [-?|--help]
\tnew [EMAIL] | update [EMAIL] | deactivate | newkey |
\tissue IDENTIFIER [ALTNAME ...]] | issue CSRFILE |
\tcheck IDENTIFIER [ALTNAME ...]] | check CSRFILE |
\trevoke CERTFILE [CERTKEYFILE]"""


#: uacme's version(): on stderr, exit status 2.
VERSION = """{prog}: version {version} (a port of uacme {uacme})

{prog} is free software: you can redistribute and/or modify
it under the terms of the GNU General Public License as
published by the Free Software Foundation, either version 3
of the License, or (at your option) any later version.

{prog} is distributed in the hope that it will be useful, but
WITHOUT ANY WARRANTY; without even the implied warranty of
MERCHANTABILITY or FITNESS FOR A PARTICULAR PURPOSE.

See https://www.gnu.org/licenses/gpl.html for more details.
"""


def c_strtol(s: str, base: int) -> tuple[int, str]:
    """C's strtol(): (value, the unparsed rest).  Leading white space and a sign are taken;
    base 0 reads 0x.. as hex and 0.. as octal; no digits gives (0, s); out of range clamps."""
    i = 0
    while i < len(s) and s[i] in " \t\n\v\f\r":
        i += 1
    sign = 1
    if i < len(s) and s[i] in "+-":
        sign = -1 if s[i] == "-" else 1
        i += 1
    hexdigits = "0123456789abcdefABCDEF"
    if base in (0, 16) and s[i:i + 2].lower() == "0x" and s[i + 2:i + 3] and s[i + 2] in hexdigits:
        base, i = 16, i + 2
    elif base == 0:
        base = 8 if s[i:i + 1] == "0" else 10
    digits = hexdigits[:base] if base <= 10 else hexdigits
    j = i
    while j < len(s) and s[j] in digits and int(s[j], 16) < base:
        j += 1
    if j == i:
        return 0, s
    value = sign * int(s[i:j], base)
    return max(-(1 << 63), min((1 << 63) - 1, value)), s[j:]


def _c_int(value: int) -> int:
    """A long stored in a C int (uacme's bits, days, reason): the low 32 bits, signed."""
    return ((value + (1 << 31)) % (1 << 32)) - (1 << 31)


def alt_parse(s: str) -> int | bytes:
    """Port of uacme.c:alt_parse(): N > 0 read by strtol(s, 0) (so 0x10 and 010 too), or a
    fingerprint prefix: 2 to 32 hex pairs, the ':'-separated tokens strtok() finds."""
    n, rest = c_strtol(s, 0)
    if not rest and n > 0:
        return n
    tokens = [t for t in s.split(":") if t]  # strtok(): empty tokens do not exist
    if 1 < len(tokens) <= 32 and all(len(t) == 2 and all(c in "0123456789abcdefABCDEF" for c in t)
                                     for t in tokens):
        return bytes(int(t, 16) for t in tokens)
    raise UsageError("-l requires a positive argument or a SHA256 fingerprint")


def ident_dir(given: str, canonical: str) -> str:
    """The directory of an identifier: the first name as typed, as uacme uses it (mixed
    case and IPv6 written any way kept, so an existing uacme confdir is found), less a
    leading "*."; a Unicode name (which uacme refuses) by its A-label."""
    name = given if given.isascii() else canonical
    return name[2:] if name.startswith("*.") else name


def csr_certprefix(csrfile: str) -> str:
    """uacme's certificate prefix for `issue CSRFILE`: the path up to its last dot, then "-".

    As uacme (1.7.4 and HEAD) the last dot of the whole path counts, a directory's
    included: dir.d/req gives dir-cert.pem, ./req gives -cert.pem."""
    dot = csrfile.rfind(".")
    return f"{csrfile[:dot] if dot >= 0 else csrfile}-"


def check_or_mkdir(create: bool, path: str, mode: int, log: Msg | None = None) -> None:
    """Port of uacme.c:check_or_mkdir()."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        if not create:
            raise FileError(f"failed to access {path}: no such directory") from None
        try:
            os.mkdir(path, mode)
        except OSError as e:
            raise FileError(f"failed to create {path}: {e.strerror}") from None
        if log:
            log(1, f"created directory {path}")
        return
    except OSError as e:
        raise FileError(f"failed to access {path}: {e.strerror}") from None
    if not stat.S_ISDIR(st.st_mode):
        raise FileError(f"{path} is not a directory")


class Options:
    def __init__(self) -> None:
        self.directory = PRODUCTION_URL
        self.custom_directory = self.staging = False
        self.bits = 0
        self.confdir = DEFAULT_CONFDIR
        self.days = 30
        self.eab: str | None = None
        self.force = self.never = self.yes = self.rotate = self.status_req = False
        self.status_check = self.ari = True
        self.hook: str | None = None
        self.alternate: int | bytes | None = None
        self.profile: str | None = None
        self.reason = 0
        self.type = "RSA"
        self.verbose = 0
        self.ident: str | None = None  # the directory name of `issue`/`check` IDENTIFIER


def _number(value: str, base: int, what: str, positive: bool = True) -> int:
    """uacme's `x = strtol(optarg, &endptr, base); if (*endptr != 0 || x <= 0)` (or `< 0`)."""
    n, rest = c_strtol(value, base)
    n = _c_int(n)
    if rest or n < (1 if positive else 0):
        raise UsageError(f"{what} must be a {'positive' if positive else 'non-negative'} integer")
    return n


#: Options that only set an attribute of Options: short letter -> (attribute, value).
_FLAGS = {"f": ("force", True), "i": ("ari", False), "k": ("rotate", True),
          "m": ("status_req", True), "n": ("never", True), "o": ("status_check", False),
          "y": ("yes", True)}
#: Options whose argument is kept as given.
_STRINGS = {"c": "confdir", "e": "eab", "h": "hook", "p": "profile"}


def parse_options(argv: list[str]) -> tuple[Options, list[str]]:
    o = Options()
    try:
        opts, args = getopt.gnu_getopt(argv, SHORT, LONG)
        bad = None
    except getopt.GetoptError as e:
        # getopt_long() acts on each option before it meets a bad one (-V -Z shows the
        # version): act on the longest prefix of argv that parses, then refuse.
        bad = UsageError(f"{e}\n{USAGE}")
        opts, args = _parsable_prefix(argv)
    _apply(o, opts)
    if bad is not None:
        raise bad
    return _check_bits(o), args


def _parsable_prefix(argv: list[str]) -> tuple[list[tuple[str, str]], list[str]]:
    for k in range(len(argv) - 1, -1, -1):
        try:
            return getopt.gnu_getopt(argv[:k], SHORT, LONG)
        except getopt.GetoptError:
            continue
    return [], []


def _apply(o: Options, opts: list[tuple[str, str]]) -> None:
    """uacme's switch on each option, in command-line order."""
    for opt, val in opts:
        c = _LETTER[opt]
        if c in _FLAGS:
            setattr(o, *_FLAGS[c])
        elif c in _STRINGS:
            setattr(o, _STRINGS[c], val)
        elif c == "a":
            if o.staging:
                raise UsageError("-a,--acme-url is incompatible with -s,--staging")
            o.custom_directory, o.directory = True, val
        elif c == "s":
            if o.custom_directory:
                raise UsageError("-s,--staging is incompatible with -a,--acme-url")
            o.staging, o.directory = True, STAGING_URL
        elif c == "b":
            o.bits = _number(val, 10, "BITS")
        elif c == "d":
            o.days = _number(val, 10, "DAYS")
        elif c == "r":
            o.reason = _number(val, 0, "CODE", positive=False)
        elif c == "l":
            o.alternate = alt_parse(val)
        elif c == "t":
            if val.upper() not in ("RSA", "EC"):
                raise UsageError("type must be either RSA or EC")
            o.type = val.upper()
        elif c == "v":
            o.verbose += 1
        elif c == "V":
            raise _Version()
        else:  # -? / --help
            raise UsageError(USAGE)


def _check_bits(o: Options) -> Options:
    if o.bits == 0:
        o.bits = 2048 if o.type == "RSA" else 256
    problem = crypto.key_bits_problem(o.type, o.bits)
    if problem:
        raise UsageError(f"BITS {problem}")
    return o


class _Version(Exception):
    pass


def main(argv: list[str], stdin: Any = None) -> int:
    """Run one uacme command line; the exit status is uacme's (0, 1 or 2)."""
    log = Msg(0, prog="wucme")
    try:
        o, args = parse_options(argv)
        log.level = o.verbose
        return _run(o, args, log, stdin)
    except _Version:
        sys.stderr.write(VERSION.format(prog="wucme", version=__version__, uacme=UACME_VERSION))
        return 2
    except WucmeError as e:
        log.write(e.message())
        return 2
    except KeyboardInterrupt:
        log.write(format_message("F", "ABORT", "interrupted"))
        return 2


def _run(o: Options, args: list[str], log: Msg, stdin: Any) -> int:
    if not args:
        raise UsageError(USAGE)
    action, rest = args[0], args[1:]
    names: list[str] = []
    csrfile: str | None = None
    certfile: str | None = None
    certkey: Any = None
    if action in ("new", "update"):
        if len(rest) > 1:
            raise UsageError(USAGE)
    elif action in ("newkey", "deactivate"):
        if rest:
            raise UsageError(USAGE)
    elif action in ("issue", "check"):
        if not rest:
            raise UsageError(USAGE)
        if os.path.isfile(rest[0]):
            if len(rest) > 1:
                raise UsageError(USAGE)
            csrfile = rest[0]
        else:
            names = validate_identifiers(rest)
            o.ident = ident_dir(rest[0], names[0])
    elif action == "revoke":
        if not rest or len(rest) > 2:
            raise UsageError(USAGE)
        certfile = rest[0]
        if not os.access(certfile, os.R_OK):
            raise FileError(f"failed to read {certfile}")
        if len(rest) == 2:
            certkey = crypto.key_load(rest[1], log=log.at(1))
    else:
        raise UsageError(USAGE)

    log(1, f"version {__version__} (uacme {UACME_VERSION}) starting on "
           f"{time.strftime('%a, %d %b %Y %H:%M:%S %z')}")
    os.environ["UACME_VERBOSE"] = str(o.verbose)
    os.environ["UACME_CONFDIR"] = o.confdir
    if o.hook is not None:
        if not os.access(o.hook, os.R_OK | os.X_OK):  # relative to the current directory
            raise FileError(f"{o.hook}: not executable")
        hook_timeout()  # a bad WUCME_HOOK_TIMEOUT is refused before anything is done

    a = open_session(o.directory, log)
    a.hook_order = hook_order()
    a.hook, a.alternate, a.profile, a.confdir = o.hook, o.alternate, o.profile, o.confdir
    if o.eab:
        acct.eab_parse(a, o.eab)
    if action in ("new", "update") and rest:
        a.email = rest[0]
    try:
        return _act(a, o, action, names, csrfile, certfile, certkey, stdin)
    finally:
        a.transport.close()


def _act(a: AcmeSession, o: Options, action: str, names: list[str], csrfile: str | None,
         certfile: str | None, certkey: Any, stdin: Any) -> int:
    keyprefix = os.path.join(o.confdir, "private")
    if certkey is not None:
        a.key = certkey  # revoke signed by the certificate key: no account involved
    else:
        is_new = action == "new"
        check_or_mkdir(is_new and not o.never, o.confdir, 0o755, a.log)
        check_or_mkdir(is_new and not o.never, keyprefix, 0o700, a.log)
        a.key = crypto.key_load(os.path.join(keyprefix, "key.pem"),
                                o.type if is_new and not o.never else None, o.bits, mode=KEY_MODE,
                                log=a.log.at(1))

    if action == "new":
        acme_bootstrap(a)
        acct.account_new(a, o.yes, stdin)
        return 0
    if action == "update":
        acme_bootstrap(a)
        acct.account_retrieve(a)
        acct.account_update(a)
        return 0
    if action == "newkey":
        acme_bootstrap(a)
        acct.account_retrieve(a)
        acct.account_keychange(a, o.never, o.type, o.bits, keyprefix, KEY_MODE)
        return 0
    if action == "deactivate":
        acme_bootstrap(a)
        acct.account_retrieve(a)
        acct.account_deactivate(a)
        return 0
    if action == "revoke":
        assert certfile
        acme_bootstrap(a)
        if certkey is None:
            acct.account_retrieve(a)
        cert_revoke(a, certfile, o.reason)
        return 0
    return _issue(a, o, action == "check", names, csrfile)


def _issue(a: AcmeSession, o: Options, check: bool, names: list[str], csrfile: str | None) -> int:
    newkeyfile = keyfile = None
    key = None
    csr: bytes | None = None
    if csrfile:
        csr, names = crypto.csr_load(csrfile)
        names = validate_identifiers(names)
        certprefix = csr_certprefix(csrfile)
        if o.status_req:
            a.log.warn("-m, --must-staple is ignored with a CSR")
        if o.rotate:
            a.log.warn("-k, --rotate-key is ignored with a CSR")
    else:
        ident = o.ident or ident_dir(names[0], names[0])
        rotate = o.rotate
        if rotate and o.never:
            raise UsageError("-k, --rotate-key and -n, --never-create are incompatible")
        if rotate and check:
            a.log.warn("-k, --rotate-key is ignored with check")
            rotate = False
        keyprefix = os.path.join(o.confdir, "private", ident)
        certprefix = os.path.join(o.confdir, ident) + "/"
        check_or_mkdir(not (o.never or check), keyprefix, 0o700, a.log)
        check_or_mkdir(not (o.never or check), certprefix, 0o755, a.log)
        keyfile = os.path.join(keyprefix, "key.pem")
        if rotate:
            newkeyfile = os.path.join(keyprefix, "newkey.pem")
        key = crypto.key_load(newkeyfile or keyfile, None if (o.never or check) else o.type,
                              o.bits, mode=KEY_MODE, log=a.log.at(1))
    try:
        return _issue_with_key(a, o, check, names, csr, certprefix, key, keyfile, newkeyfile)
    finally:
        if newkeyfile and os.path.exists(newkeyfile):
            os.unlink(newkeyfile)


def _issue_with_key(a: AcmeSession, o: Options, check: bool, names: list[str],
                    csr: bytes | None, certprefix: str, key: Any, keyfile: str | None,
                    newkeyfile: str | None) -> int:
    filename = f"{certprefix}cert.pem"
    acme_bootstrap(a)
    ari_url = a.dir.get("renewalInfo") if o.ari else None
    a.log(1, f"checking existence and expiration of {filename}")
    if cert_valid(a, filename, names, ari_url, o.days, o.status_check):
        if check:
            a.log(1, f"{filename} is valid")
            return 1
        if not o.force:
            a.log(1, f"skipping {filename}")
            return 1
        a.log(1, f"forcing reissue of {filename}")
    elif check:
        return 0
    if csr is None:
        a.log(1, "generating certificate request")
        csr = crypto.csr_gen(names, o.status_req, a.profile is not None, key)
    replaces = ari_replaces(a, filename) if ari_url else None
    acct.account_retrieve(a)
    cert_issue(a, names, csr, certprefix, replaces)
    if newkeyfile and keyfile:
        link_backup(a.log, keyfile)
        a.log(1, f"renaming {newkeyfile} to {keyfile}")
        os.rename(newkeyfile, keyfile)
    return 0
