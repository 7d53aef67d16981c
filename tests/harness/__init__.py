"""The real-parts test environment: Pebble, challenge responders, a fault proxy, an OCSP
responder, Apache and nginx as children, a fake clock; and the demo (`python3 build.py demo`).

It lives under tests/ and is never installed: the product has no test code in it.  The
tests import it as `harness` (pyproject's pytest `pythonpath` puts tests/ on sys.path; the
benchmark scripts and build.py's demo do the same).  See DESIGN.md, "Test environment".

    from harness.pebble import Pebble
    with Pebble(validity=600) as ca:
        ...  # ca.directory_url, ca.ca_bundle, ca.http_port, ca.tls_port
"""
