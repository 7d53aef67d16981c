"""The `wucme` command: the face that dispatches to the uacme port, alpn and the verbs.

When a web server runs the image as a CGI script (GATEWAY_INTERFACE set), it
answers http-01 challenges, as WASD runs the same wucme image as a script.
"""
from __future__ import annotations

import os
import sys

from wucme import UACME_VERSION, __version__


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if argv is None and os.environ.get("GATEWAY_INTERFACE"):
        from wucme.challenge.http01 import cgi_main

        return cgi_main()
    if args and args[0] == "--uacme":
        from wucme.uacme.main import main as uacme_main

        return uacme_main(args[1:])
    if args and args[0].lower() == "alpn":
        from wucme.challenge.alpn import alpn_main

        return alpn_main(args[1:])
    if args and args[0].lower().startswith("vers"):
        print(f"%WUCME-I-VERSION, wucme {__version__} (uacme {UACME_VERSION} port)")
        return 0
    sys.stderr.write(
        "%WUCME-E-IVVERB, unrecognized command verb; this build offers: "
        "--uacme, alpn, version\n"
    )
    return 2


if __name__ == "__main__":
    sys.exit(main())
