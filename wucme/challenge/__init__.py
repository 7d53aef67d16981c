"""Challenge responders: the shared store, http-01 and tls-alpn-01 (RFC 8555 §8.3, RFC 8737, RFC 8738).

`store` is the interface between the ACME client and the responders; `alpn` is the ualpn port,
driven over its control socket (`AlpnControl`).
"""

from __future__ import annotations

from wucme.challenge.store import ChallengeStore, default_store_dir

__all__ = ["ChallengeStore", "default_store_dir"]
