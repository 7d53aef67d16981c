"""The real-parts test environment: Pebble, challenge responders, a fault proxy.

Used by the test suite and by the demo (`python3 build.py demo`); not by the
product.  See DESIGN.md, "Test environment".

    from wucme.testing import Pebble
    with Pebble(validity=600) as ca:
        ...  # ca.directory_url, ca.ca_bundle, ca.http_port, ca.tls_port
"""
from __future__ import annotations

from wucme.testing.faultproxy import FaultProxy, ProxyRequest, Rule, match_path, problem
from wucme.testing.pebble import (ChallTestSrv, Pebble, PebbleError, TestCA, free_port,
                                  install_system_trust, make_server_cert, make_test_ca,
                                  pebble_available, running_pebble, stable_test_ca)
from wucme.testing.responders import ChallengeDirServer, Ualpn, write_hook_scripts

__all__ = [
    "ChallTestSrv", "ChallengeDirServer", "FaultProxy", "Pebble", "PebbleError", "ProxyRequest",
    "Rule", "TestCA", "Ualpn", "free_port", "install_system_trust", "make_server_cert",
    "make_test_ca", "match_path", "pebble_available", "problem", "running_pebble",
    "stable_test_ca", "write_hook_scripts",
]
