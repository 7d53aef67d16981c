"""Packaging for wucme; the console script is `wucme`.

The native helpers (native/*.c) are built through cffi by the builders in
native/build_ffi.py; each has a pure-Python twin in wucme/_native/.  Only the
package wucme is installed: the test harness (tests/harness) never is.
"""
import os
import shlex
import subprocess
import sysconfig

from setuptools import find_packages, setup


def _has_header(name: str) -> bool:
    """Does the C compiler find the header *name*?  native/pkey.c needs libcrypto's (Debian's
    libssl-dev); without them wucme is built without that helper, and its twin does the work."""
    cc = shlex.split(os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc")
    try:
        return subprocess.run([*cc, "-E", "-"], input=f"#include <{name}>\n", capture_output=True,
                              text=True, timeout=60).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


setup(
    name="wucme",
    version="0.1.0",
    description="wµCME: certificate management for ACME CAs, a port of WASD's wµCME and uacme",
    license="GPL-3.0-or-later",
    python_requires=">=3.11",
    packages=find_packages(include=["wucme", "wucme.*"]),
    package_data={"wucme": ["py.typed"]},
    install_requires=[
        "cryptography>=41",
        "pyOpenSSL>=23",
        "requests>=2.28",
        "cffi>=1.15",
        "idna>=3.4",
    ],
    extras_require={"test": ["pytest>=7", "aiosmtpd>=1.4", "hypothesis>=6"],
                    "cluster": ["psycopg[binary]>=3.1"]},
    cffi_modules=["native/build_ffi.py:lockmgr_ffi", "native/build_ffi.py:certscan_ffi",
                  "native/build_ffi.py:splice_ffi",
                  *(["native/build_ffi.py:pkey_ffi"] if _has_header("openssl/evp.h") else [])],
    entry_points={"console_scripts": ["wucme=wucme.entry:main"]},
)
