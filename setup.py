"""Packaging for wucme; the console script is `wucme`.

Native helpers (native/*.c) are built by build.py through cffi; each has a
pure-Python twin, so the package installs and runs without a compiler.
"""
from setuptools import find_packages, setup

from build import cffi_modules  # build.py never imports wucme

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
    extras_require={"test": ["pytest>=7", "aiosmtpd>=1.4"], "cluster": ["psycopg[binary]>=3.1"]},
    setup_requires=["cffi>=1.15"],
    cffi_modules=cffi_modules(),
    entry_points={"console_scripts": ["wucme=wucme.cli:main"]},
)
