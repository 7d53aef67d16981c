"""Challenge responders: the shared store, http-01 and tls-alpn-01 (RFC 8555 §8.3, RFC 8737, RFC 8738).

`store` is the interface between the ACME client and the responders (ChallengeStore); `alpn` is
the ualpn port, driven over its control socket (`AlpnControl`).  The package itself imports
nothing: the CGI answer to a challenge (wucme.challenge.answer) reads the store through
`storefile` alone, a new process per request (docs/performance.md, "Start-up").
"""
