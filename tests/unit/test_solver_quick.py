"""Which solvers the uacme port may call from one thread (wucme.uacme.hook.QUICK): wucme's own
http-01 answers, files of the challenge store, and the wrappers `obtain` puts around them,
unless a guard (a cluster lock's check) is among them."""
from __future__ import annotations

import io
from pathlib import Path

from wucme.challenge.solver import ChallengeSolver
from wucme.challenge.store import ChallengeStore
from wucme.obtain import _announcing, _guarded, _tracked
from wucme.progress import Progress
from wucme.settings import ChallengeConfig


def solver(tmp_path: Path, type: str) -> ChallengeSolver:
    return ChallengeSolver(ChallengeConfig(type, None, None), "thumb",
                           store=ChallengeStore(tmp_path / "store"))


def test_http01_answers_in_the_stores_files_are_quick_and_tls_alpn01_is_not(tmp_path: Path) -> None:
    assert solver(tmp_path, "http-01").quick is True
    assert solver(tmp_path, "tls-alpn-01").quick is False


def test_progress_and_the_announcement_keep_the_mark_and_a_guard_drops_it(tmp_path: Path) -> None:
    quick = solver(tmp_path, "http-01")
    tracked = _tracked(quick, Progress(["a.test"], io.StringIO(), tty=False))
    announced = _announcing(tracked, lambda: None)
    assert getattr(tracked, "quick", False) and getattr(announced, "quick", False)
    assert not getattr(_guarded(announced, lambda: None), "quick", False)
    assert not getattr(_tracked(solver(tmp_path, "tls-alpn-01"), Progress(["a.test"], io.StringIO(), tty=False)),
                       "quick", False)
