#!/usr/bin/env python3
"""wucme's set-up, test and demo entry, and the cffi builders of native/.

    python3 build.py setup   install what wucme needs (Debian and Python packages)
    python3 build.py demo    set up, then run the demo against a local Pebble CA
    python3 build.py test    set up, then run the test suite (pytest arguments may follow)
    python3 build.py bench   set up, then run the benchmarks in tests/bench/

Each native helper is a pair native/NAME.h (the cdef) and native/NAME.c (the
source); `NAME_ffi` below is its cffi builder and `cffi_modules()` lists them
for setup.py.  This file must not import wucme: cffi's setuptools hook execs it
before the package can be imported.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
NATIVE = HERE / "native"

#: Debian packages the tests and the demo use (real parts, not mocks).
DEBIAN_PACKAGES = ["pebble", "uacme", "apache2", "nginx", "libnginx-mod-stream", "wrk", "openssl",
                   "ca-certificates", "postgresql"]
PYTHON_TEST_PACKAGES = ["pytest>=7", "aiosmtpd>=1.4", "mypy>=1.8", "setuptools>=61", "wheel", "cffi>=1.15",
                        "cryptography>=41", "pyOpenSSL>=23", "requests>=2.28", "idna>=3.4",
                        "psycopg[binary]>=3.1"]


def _native_names() -> list[str]:
    return sorted(p.stem for p in NATIVE.glob("*.h") if (NATIVE / f"{p.stem}.c").exists())


def _ffi(name: str):  # type: ignore[no-untyped-def]
    from cffi import FFI

    ffi = FFI()
    ffi.cdef((NATIVE / f"{name}.h").read_text())
    ffi.set_source(
        f"wucme._native._{name}",
        (NATIVE / f"{name}.c").read_text(),
        include_dirs=[str(NATIVE)],
        extra_compile_args=["-O2", "-Wall"],
    )
    return ffi


def cffi_modules() -> list[str]:
    """The `cffi_modules` entries for setup.py, one per native helper."""
    return [f"build.py:{n}_ffi" for n in _native_names()]


for _n in _native_names():
    globals()[f"{_n}_ffi"] = _ffi(_n)


# --- set-up -----------------------------------------------------------------

def _run(cmd: list[str], **kw) -> None:  # type: ignore[no-untyped-def]
    print("$", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, **kw)


def _missing_debian() -> list[str]:
    out = []
    for pkg in DEBIAN_PACKAGES:
        r = subprocess.run(["dpkg-query", "-W", "-f=${Status}", pkg],
                           capture_output=True, text=True)
        if "install ok installed" not in r.stdout:
            out.append(pkg)
    return out


def setup_debian() -> None:
    """Install the Debian packages (as root, or through sudo)."""
    missing = _missing_debian() if shutil.which("dpkg-query") else []
    if not missing:
        return
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    _run(sudo + ["apt-get", "update", "-q"], env=env)
    _run(sudo + ["apt-get", "install", "-y", "-q", "--no-install-recommends", *missing], env=env)
    # The packaged services must not hold the ports or run at all: tests start their own.
    for svc in ("apache2", "nginx", "postgresql"):
        subprocess.run(sudo + ["service", svc, "stop"], capture_output=True)


def setup_python() -> None:
    """Install wucme itself (editable, building native/) and the test packages."""
    _run([sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check",
          *PYTHON_TEST_PACKAGES])
    _run([sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check",
          "--no-build-isolation", "-e", str(HERE)])


def setup() -> None:
    setup_debian()
    setup_python()


def main(argv: list[str]) -> int:
    verb = argv[0] if argv else "help"
    rest = argv[1:]
    if verb == "setup":
        setup()
        return 0
    if verb == "test":
        setup()
        return subprocess.call([sys.executable, "-m", "pytest", "-q", *rest], cwd=HERE)
    if verb == "bench":
        setup()
        return subprocess.call([sys.executable, "-m", "pytest", "-q", "-s",
                                str(HERE / "tests" / "bench"), *rest], cwd=HERE)
    if verb == "demo":
        setup()
        return subprocess.call([sys.executable, "-m", "wucme.demo", *rest], cwd=HERE)
    print(__doc__)
    return 0 if verb in ("help", "-h", "--help") else 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
