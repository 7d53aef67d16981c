"""uacme's file habits: a replaced file is first hard-linked as NAME-EPOCH.pem.

uacme gives up when that name exists already (a second replacement within one
second); here the link waits for the next second instead, so nothing is lost.
"""
from __future__ import annotations

import os
import time

from wucme.errors import FileError
from wucme.uacme.msg import Msg


def link_backup(log: Msg, path: str, strict: bool = False) -> str | None:
    """Hard-link `path` (…/NAME.pem) as …/NAME-EPOCH.pem; the link, or None without `path`.

    A failure other than a name in use is an error when `strict` (the
    certificate must not be replaced unsaved), else a warning, as uacme does for keys.
    """
    stem = path[: -len(".pem")] if path.endswith(".pem") else path
    for _ in range(3):
        bak = f"{stem}-{int(time.time())}.pem"
        try:
            os.link(path, bak)
        except FileNotFoundError:
            return None
        except FileExistsError:
            time.sleep(1.0 - time.time() % 1.0 + 0.001)
            continue
        except OSError as e:
            if strict:
                raise FileError(f"failed to link {bak} to {path}: {e.strerror}") from None
            log.warn(f"failed to link {bak} to {path}: {e.strerror}")
            return None
        log(1, f"backed up {path} as {bak}")
        return bak
    if strict:
        raise FileError(f"failed to back up {path}: backup names in use")
    log.warn(f"failed to back up {path}: backup names in use")
    return None
