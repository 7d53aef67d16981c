"""One parser under atheris (coverage-guided, libFuzzer): `python -m tests.fuzz.atheris_parsers
TARGET [libFuzzer options]`, as `python3 build.py fuzz [MINUTES]` runs each target of
tests/fuzz/targets.py.  The property is the hypothesis tests' (a result or a clean error); an
input that breaks it, hangs past -timeout or grows past -rss_limit_mb is written to the
current directory as crash-*, timeout-* or oom-* for a regression test.
"""
from __future__ import annotations

import sys


def main(argv: list[str]) -> int:
    if not argv or argv[0].startswith("-"):
        from tests.fuzz.targets import TARGETS

        print("usage: atheris_parsers TARGET [libFuzzer options]; targets: " + ", ".join(sorted(TARGETS)),
              file=sys.stderr)
        return 2
    name, options = argv[0], argv[1:]
    import atheris  # type: ignore[import-not-found]

    with atheris.instrument_imports(include=["wucme"]):
        from tests.fuzz.targets import SEEDS, TARGETS, run

        if name not in TARGETS:
            print(f"%WUCME-E-NOTARGET, no fuzz target {name}", file=sys.stderr)
            return 2
        for seed in SEEDS[name]:  # the target imports its parser when first called: instrumented
            run(name, seed)

    def one(data: bytes) -> None:
        run(name, data)

    import os
    import tempfile

    corpus = tempfile.mkdtemp(prefix=f"wucme-fuzz-{name}-")
    for i, seed in enumerate(SEEDS[name]):
        with open(os.path.join(corpus, f"seed{i}"), "wb") as f:
            f.write(seed)
    atheris.Setup([sys.argv[0], *options, corpus], one)
    atheris.Fuzz()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
