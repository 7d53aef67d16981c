"""The certificates in Prometheus's text exposition format: `wucme certificates
/output=prometheus`, and the file the renewal pass rewrites each pass (WUCME_PROMETHEUS_FILE)
for node_exporter's textfile collector.  docs/monitoring.md has the metrics and an alert rule.

The file is replaced atomically (written aside, then renamed), as the textfile collector
requires: it must never see half a file.
"""
from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable
from pathlib import Path

from wucme.core.times import parse_iso
from wucme.crypto import write_atomic
from wucme.repository import Managed

__all__ = ["prometheus_text", "write_textfile"]

_HELP = (
    ("wucme_certificate_days_left", "gauge", "Days until the certificate expires (negative: expired)."),
    ("wucme_certificate_not_after_seconds", "gauge", "When the certificate expires, Unix time."),
    ("wucme_certificate_ok", "gauge",
     "1 when the last attempt for the certificate succeeded and its file is readable, else 0."),
    ("wucme_certificate_last_attempt_seconds", "gauge", "When wucme last issued or renewed it (or tried), Unix time."),
    ("wucme_certificate_last_pass_seconds", "gauge", "When a renewal pass last looked at the certificate, Unix time."),
    ("wucme_renewal_pass_seconds", "gauge", "When the last renewal pass ended, Unix time."),
    ("wucme_renewal_pass_ok", "gauge", "1 when the last renewal pass renewed and loaded without failure, else 0."),
)


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _stamp(value: str | None) -> float | None:
    t = parse_iso(value)
    return t.timestamp() if t is not None else None


def prometheus_text(managed: Iterable[Managed], *, now: _dt.datetime,
                    pass_ok: bool | None = None) -> str:
    """The metrics of *managed*; with *pass_ok* (a renewal pass just ended at *now*) also the
    pass's own, and every certificate's last-pass time."""
    samples: dict[str, list[str]] = {name: [] for name, _, _ in _HELP}
    for m in managed:
        labels = f'file="{_label(m.cert_name)}",host="{_label(m.hosts[0] if m.hosts else "")}"'
        left = m.days_left(now)
        if left is not None and m.info is not None:
            samples["wucme_certificate_days_left"].append(f"{{{labels}}} {left:.3f}")
            samples["wucme_certificate_not_after_seconds"].append(
                f"{{{labels}}} {m.info.not_valid_after_utc.timestamp():.0f}")
        ok = m.info is not None and m.state.status not in ("failed", "revoked")
        samples["wucme_certificate_ok"].append(f"{{{labels}}} {int(ok)}")
        attempt = _stamp(m.state.last_attempt)
        if attempt is not None:
            samples["wucme_certificate_last_attempt_seconds"].append(f"{{{labels}}} {attempt:.0f}")
        if pass_ok is not None:
            samples["wucme_certificate_last_pass_seconds"].append(f"{{{labels}}} {now.timestamp():.0f}")
    if pass_ok is not None:
        samples["wucme_renewal_pass_seconds"].append(f" {now.timestamp():.0f}")
        samples["wucme_renewal_pass_ok"].append(f" {int(pass_ok)}")
    out: list[str] = []
    for name, kind, text in _HELP:
        if samples[name]:
            out += [f"# HELP {name} {text}", f"# TYPE {name} {kind}"]
            out += [name + s for s in samples[name]]
    return "".join(line + "\n" for line in out)


def write_textfile(path: Path, text: str) -> None:
    """Replace *path* at once (0644: node_exporter runs as its own user)."""
    write_atomic(path, text.encode("utf-8"), 0o644)
