"""The port of uacme (github.com/ndilieto/uacme), one module per uacme concept.

Function names are uacme's, so the C and the Python read side by side:
acme.py (acme_get, acme_post, acme_nonce, acme_bootstrap), account.py,
authorize.py, cert.py (cert_issue, cert_revoke, cert_valid), ari.py, hook.py,
main.py (the `wucme --uacme` command line).
"""
