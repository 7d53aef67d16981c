"""Real Apache and nginx, started as children on loopback with the configurations shipped in docs/servers/.

The tests and the benchmarks run the Debian binaries with a configuration of their own in a
temporary server root (pid file, logs, sockets), in the foreground, and stop them at teardown:
never the system service.  The wucme parts of each configuration are the files an
administrator installs (docs/servers/apache-wucme.conf, docs/servers/nginx-wucme.conf), so what
the tests validate is what the manual ships.

    with Apache(port, store_dir=...) as web:        # runs wucme as a CGI script
        ...  # web.url
    with Nginx(front_port, responder_port, cert, key) as ng:   # stream + ssl_preread
        ...  # ng.front_port, ng.site_port, ng.proxy_site_port
"""
from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple, Sequence

from harness.pebble import ManagedProcess, ManagedServer, free_port, log_tail, wait_port
import wucme

__all__ = [
    "WebServerError", "Apache", "Nginx", "apache_available", "nginx_stream_available",
    "shared_dir", "cgi_script", "HttpReply", "define_system_logical", "DOCS_SERVERS", "http_get",
    "APACHE", "NGINX", "APACHE_MODULES", "NGINX_STREAM_MODULE", "render_nginx_stream",
    "processes_in_group",
]

APACHE = "apache2"
NGINX = "nginx"
APACHE_MODULES = Path("/usr/lib/apache2/modules")
NGINX_STREAM_MODULE = Path("/usr/lib/nginx/modules/ngx_stream_module.so")
#: The shipped configurations, in this source tree.
DOCS_SERVERS = Path(__file__).resolve().parents[2] / "docs" / "servers"
#: What the CGI answers for the bare challenge directory (the administrator's curl check).
NO_SUCH_TOKEN = "Challenge received but no such token."


class WebServerError(RuntimeError):
    """A web server could not be configured or started, or did not answer as configured."""


def apache_available() -> bool:
    """True when Debian's apache2 and the modules the test configuration loads are installed."""
    need = ("mod_mpm_event.so", "mod_cgid.so", "mod_alias.so", "mod_env.so", "mod_authz_core.so")
    return shutil.which(APACHE) is not None and all((APACHE_MODULES / m).exists() for m in need)


def nginx_stream_available() -> bool:
    """True when nginx and its stream module (Debian package libnginx-mod-stream) are installed."""
    return shutil.which(NGINX) is not None and NGINX_STREAM_MODULE.exists()


def shared_dir(prefix: str) -> Path:
    """A fresh directory under the system temp dir that other users may search (0755).

    pytest's own temp dirs are 0700, so a web server's CGI user (www-data) could not reach a
    script or a challenge store inside them.
    """
    d = Path(tempfile.mkdtemp(prefix=prefix))
    d.chmod(0o755)
    return d


def _cgi_user() -> str | None:
    """The user Apache runs scripts as: www-data when started by root, else ourselves (None)."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam("www-data")
    except KeyError:
        return None
    return "www-data"


def _runs_as(script: Path, user: str | None) -> bool:
    """Does *script* answer a CGI request when run as *user*?  (A real run, not a guess.)"""
    env = {"GATEWAY_INTERFACE": "CGI/1.1", "REQUEST_METHOD": "GET", "SCRIPT_NAME": "/cgi-bin/wucme",
           "PATH_INFO": "/.well-known/acme-challenge/", "WUCME_CHALLENGES": "/nonexistent",
           "PATH": "/usr/bin:/bin"}
    try:
        r = subprocess.run([str(script)], env=env, capture_output=True, timeout=30, cwd="/",
                           user=user)
    except (OSError, subprocess.SubprocessError):
        return False
    return r.returncode == 0 and NO_SUCH_TOKEN.encode() in r.stdout


def cgi_script(directory: Path, user: str | None = None) -> Path:
    """The wucme executable for Apache to run as a CGI script by *user*.

    The `wucme` console script beside this interpreter (the project's virtual environment's,
    made by build.py) when *user* can run it; otherwise (an environment made from a Python
    under /root, as pyenv puts it) a two-line launcher in *directory* on an interpreter *user*
    can run, importing a byte-compiled copy of the package in *directory* (as an installed
    package is), or this tree when the copy will not do.  Raises WebServerError when nothing works.
    """
    installed = Path(sys.executable).parent / "wucme"
    if installed.exists() and _runs_as(installed, user):
        return installed
    tree = Path(wucme.__file__).resolve().parents[1]
    copy = directory / "lib"
    launcher = directory / "wucme"
    for python in dict.fromkeys([sys.executable, "/usr/bin/python3"]):
        for root in (copy, tree):
            if root == copy and not copy.exists():
                # A byte-compiled copy, as an installed package is: the tree may be out of the
                # user's reach (a clone under /root), and where it is not, the user cannot write
                # its __pycache__, so every request would compile every module it imports.
                shutil.copytree(tree / "wucme", copy / "wucme",
                                ignore=shutil.ignore_patterns("__pycache__", "*.so"))
            if root == copy:
                subprocess.run([python, "-m", "compileall", "-q", str(copy)], check=False,
                               capture_output=True, timeout=300)
            launcher.write_text(
                f"#!{python} -I\n"
                '"""wucme as a CGI script: the wucme executable for an interpreter the server\'s user can run."""\n'
                f"import sys\nsys.path.insert(0, {str(root)!r})\n"
                "from wucme.entry import main\nsys.exit(main())\n")
            launcher.chmod(0o755)
            if _runs_as(launcher, user):
                return launcher
    raise WebServerError(f"no Python interpreter that user {user or 'self'} can run imports wucme "
                         f"from {tree} (installed script: {installed})")


def define_system_logical(lnm_dir: str | os.PathLike[str], name: str, value: str) -> None:
    """DEFINE /SYSTEM *name* *value* in the system table kept in *lnm_dir* (readable by all)."""
    from wucme.vms.lnm import define

    saved = os.environ.get("WUCME_LNM_DIR")
    os.environ["WUCME_LNM_DIR"] = os.fspath(lnm_dir)
    try:
        define(name, value, table="system")
    finally:
        if saved is None:
            os.environ.pop("WUCME_LNM_DIR", None)
        else:
            os.environ["WUCME_LNM_DIR"] = saved


class HttpReply(NamedTuple):
    """A raw HTTP response: the status, the header fields (names lower-cased) and the body."""

    status: int
    headers: dict[str, str]
    body: bytes


def http_get(port: int, target: str, method: str = "GET", host: str = "localhost",
             extra: bytes = b"", body: bytes | None = None, timeout: float = 10.0) -> HttpReply:
    """One raw HTTP/1.0 request to 127.0.0.1:*port*, the target sent exactly as given.

    *extra* is more header lines (each ending in CRLF); a *body* gets its Content-Length.
    """
    if body is not None:
        extra += f"Content-Length: {len(body)}\r\n".encode()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(f"{method} {target} HTTP/1.0\r\nHost: {host}\r\n".encode("latin-1") + extra + b"\r\n"
                  + (body or b""))
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, content = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    try:
        status = int(lines[0].split(" ", 2)[1])
    except (IndexError, ValueError):
        raise WebServerError(f"not an HTTP response: {data[:200]!r}") from None
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return HttpReply(status, headers, content)


# --- what Apache and nginx share --------------------------------------------------------------

class _WebServer(ManagedServer):
    """A Debian web server in the foreground in `workdir` (removed at stop if made here).

    A subclass writes `conf_path` in _start() and then calls _run().
    """

    workdir: Path
    conf_path: Path
    error_log: Path
    _own_workdir: bool

    def _run(self, name: str, check: Sequence[str], argv: Sequence[str], ports: Sequence[int],
             timeout: float) -> None:
        """Have `name` test its configuration (`check`), run `argv`, wait for each of `ports`."""
        r = subprocess.run(check, capture_output=True, text=True, env=_server_env())
        if r.returncode != 0:
            raise WebServerError(f"{name} -t rejected {self.conf_path}:\n{r.stderr}")
        self.process = ManagedProcess(argv, self.workdir / f"{name}.out", env=_server_env(),
                                      cwd=self.workdir)
        deadline = time.monotonic() + timeout
        for port in ports:
            wait_port(port, self.process, name, deadline, error=WebServerError, log=self.error_log)

    def _cleanup(self) -> None:
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def error_log_tail(self, lines: int = 30) -> str:
        return log_tail(self.error_log, lines)


def _server_env() -> dict[str, str]:
    """A web server's clean environment: nothing of ours leaks into its scripts."""
    return {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C"}


# --- Apache ----------------------------------------------------------------------------------

class Apache(_WebServer):
    """Debian's apache2 on 127.0.0.1:*port* running the wucme CGI script (docs/servers/apache-wucme.conf).

    The script finds the challenge store through the system logical name table in *lnm_dir*
    (WUCME_LNM_DIR, passed with SetEnv by the shipped file), as a server's script does on VMS:
    with *store_dir* given, WUCME_CHALLENGES is defined there.  MPM event with mod_cgid, as
    Debian enables them; scripts run as www-data when started by root.
    """

    def __init__(self, port: int | None = None, *, store_dir: str | os.PathLike[str] | None = None,
                 lnm_dir: str | os.PathLike[str] | None = None, workdir: Path | None = None,
                 access_log: bool = True, extra_config: str = "",
                 max_workers: int = 64, script: Path | None = None) -> None:
        self.port = port or free_port()
        #: An installed script to run (build.py install's launcher) instead of this tree's wucme.
        self.installed_script = script
        self._own_workdir = workdir is None
        self.workdir = workdir if workdir is not None else shared_dir("wucme-apache-")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.user = _cgi_user()
        self.lnm_dir = Path(lnm_dir) if lnm_dir is not None else self.workdir / "lnm"
        self.store_dir = Path(store_dir) if store_dir is not None else None
        self.access_log = access_log
        self.extra_config = extra_config
        self.max_workers = max_workers
        self.conf_path = self.workdir / "httpd.conf"
        self.error_log = self.workdir / "error.log"
        self.access_log_path = self.workdir / "access.log"
        self.pid_path = self.workdir / "httpd.pid"
        self.script: Path | None = None
        self.process: ManagedProcess | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def config(self) -> str:
        """The complete configuration: a minimal Debian-like server that includes the shipped file."""
        assert self.script is not None
        m = APACHE_MODULES
        user = f"User {self.user}\nGroup {self.user}\n" if self.user else ""
        log = ""
        if self.access_log:
            log = (f'CustomLog "{self.access_log_path}" "%h \\"%r\\" %>s %b"\n')
        threads = max(1, min(self.max_workers, 64))
        return f"""# Written by harness.webservers for one test run.
ServerRoot "{self.workdir}"
PidFile "{self.pid_path}"
ErrorLog "{self.error_log}"
LogLevel warn
Mutex file:{self.workdir} default
ServerName localhost
Listen 127.0.0.1:{self.port}
LoadModule mpm_event_module {m}/mod_mpm_event.so
LoadModule authz_core_module {m}/mod_authz_core.so
LoadModule alias_module {m}/mod_alias.so
LoadModule env_module {m}/mod_env.so
LoadModule cgid_module {m}/mod_cgid.so
{log}{user}ScriptSock "{self.workdir}/cgid.sock"
StartServers 1
ServerLimit 4
ThreadsPerChild {threads}
MaxRequestWorkers {threads * 4}
KeepAlive On
DocumentRoot "{self.workdir}/htdocs"
# As Debian's apache2.conf: nothing is served unless granted.
<Directory />
    AllowOverride None
    Require all denied
</Directory>
Define WUCME_SCRIPT "{self.script}"
Define WUCME_LNM_DIR "{self.lnm_dir}"
Include "{DOCS_SERVERS / 'apache-wucme.conf'}"
{self.extra_config}
"""

    def _start(self, timeout: float) -> None:
        """Write the configuration, start apache2 in the foreground, wait until the script answers."""
        if not apache_available():
            raise WebServerError("apache2 or its modules are not installed (Debian package apache2)")
        (self.workdir / "htdocs").mkdir(exist_ok=True)
        (self.workdir / "cgi").mkdir(exist_ok=True)
        (self.workdir / "cgi").chmod(0o755)
        self.lnm_dir.mkdir(parents=True, exist_ok=True)
        if self.store_dir is not None:
            define_system_logical(self.lnm_dir, "WUCME_CHALLENGES", str(self.store_dir))
        self.script = self.installed_script or cgi_script(self.workdir / "cgi", self.user)
        self.conf_path.write_text(self.config())
        self._run(APACHE, [APACHE, "-t", "-f", str(self.conf_path)],
                  [APACHE, "-f", str(self.conf_path), "-DFOREGROUND"], [self.port], timeout)
        status, _, body = http_get(self.port, "/.well-known/acme-challenge/")
        if status != 404 or NO_SUCH_TOKEN.encode() not in body:
            raise WebServerError(f"apache2 does not run the wucme script: {status} {body[:300]!r}\n"
                                 f"{self.error_log_tail()}")


# --- nginx -----------------------------------------------------------------------------------

#: The example addresses in docs/servers/nginx-wucme.conf, replaced by the real ones.
_DOC_RESPONDER = "server 127.0.0.1:4443;"
_DOC_SITE = "server 127.0.0.1:8443;"
_DOC_LISTEN = "listen 443;"
_DOC_LISTEN6 = "listen [::]:443;"


def render_nginx_stream(text: str, front: str, responder: str, site: str) -> str:
    """The shipped stream block with its example addresses replaced; each must occur once."""
    for old, new in ((_DOC_RESPONDER, f"server {responder};"), (_DOC_SITE, f"server {site};"),
                     (_DOC_LISTEN, f"listen {front};"), (_DOC_LISTEN6, "")):
        if text.count(old) != 1:
            raise WebServerError(f"docs/servers/nginx-wucme.conf no longer has exactly one {old!r}")
        text = text.replace(old, new)
    return text


class Nginx(_WebServer):
    """nginx with the stream module in front of a TLS site, routing acme-tls/1 elsewhere.

    *front_port* is the public port (docs/servers/nginx-wucme.conf: ssl_preread routes a
    ClientHello offering ``acme-tls/1`` to 127.0.0.1:*responder_port*, anything else to the
    site).  The site is an https server block with *cert*/*key* on `site_port`, and the same
    site with ``proxy_protocol`` on `proxy_site_port` (a backend for `wucme alpn`, which sends
    a PROXY header): its answer names the client address the header carried.
    """

    def __init__(self, front_port: int, responder_port: int, cert: str | os.PathLike[str],
                 key: str | os.PathLike[str], *, workdir: Path | None = None,
                 site_port: int | None = None, proxy_site_port: int | None = None) -> None:
        self.front_port = front_port
        self.responder_port = responder_port
        self.cert, self.key = Path(cert), Path(key)
        self._own_workdir = workdir is None
        self.workdir = workdir if workdir is not None else shared_dir("wucme-nginx-")
        self.workdir.mkdir(parents=True, exist_ok=True)
        ports: set[int] = {front_port, responder_port}
        self.site_port = site_port or _distinct_port(ports)
        ports.add(self.site_port)
        self.proxy_site_port = proxy_site_port or _distinct_port(ports)
        self.conf_path = self.workdir / "nginx.conf"
        self.error_log = self.workdir / "error.log"
        self.process: ManagedProcess | None = None

    def config(self) -> str:
        stream = render_nginx_stream((DOCS_SERVERS / "nginx-wucme.conf").read_text(),
                                     f"127.0.0.1:{self.front_port}",
                                     f"127.0.0.1:{self.responder_port}",
                                     f"127.0.0.1:{self.site_port}")
        w = self.workdir
        return f"""# Written by harness.webservers for one test run.
load_module {NGINX_STREAM_MODULE};
daemon off;
master_process on;
worker_processes 1;
pid {w}/nginx.pid;
error_log {self.error_log} warn;
events {{ worker_connections 1024; }}

{stream}

http {{
    access_log {w}/access.log;
    client_body_temp_path {w}/tmp/body;
    proxy_temp_path {w}/tmp/proxy;
    fastcgi_temp_path {w}/tmp/fastcgi;
    uwsgi_temp_path {w}/tmp/uwsgi;
    scgi_temp_path {w}/tmp/scgi;
    default_type text/plain;
    ssl_certificate {self.cert};
    ssl_certificate_key {self.key};
    server {{
        listen 127.0.0.1:{self.site_port} ssl;
        location / {{ return 200 "wucme test site\\n"; }}
    }}
    server {{
        listen 127.0.0.1:{self.proxy_site_port} ssl proxy_protocol;
        location / {{ return 200 "wucme test site for $proxy_protocol_addr:$proxy_protocol_port\\n"; }}
    }}
}}
"""

    def _start(self, timeout: float) -> None:
        """Write the configuration, start nginx in the foreground, wait for its three ports."""
        if not nginx_stream_available():
            raise WebServerError("nginx or its stream module is not installed "
                                 "(Debian packages nginx, libnginx-mod-stream)")
        (self.workdir / "tmp").mkdir(exist_ok=True)
        self.conf_path.write_text(self.config())
        argv = [NGINX, "-p", f"{self.workdir}/", "-c", str(self.conf_path), "-e", str(self.error_log)]
        self._run(NGINX, argv + ["-t"], argv,
                  [self.front_port, self.site_port, self.proxy_site_port], timeout)


def _distinct_port(taken: set[int]) -> int:
    while (port := free_port()) in taken:
        pass
    return port


def processes_in_group(pgid: int) -> list[int]:
    """The pids whose process group is *pgid* (to check that teardown left nothing behind)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[-1].split()
        if len(fields) > 3 and fields[0] != "Z" and int(fields[2]) == pgid:
            found.append(int(entry.name))
    return found

