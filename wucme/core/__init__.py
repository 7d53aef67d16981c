"""The protocol core: JWS, base64url and other ACME logic that does no I/O."""
