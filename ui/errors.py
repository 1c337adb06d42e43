"""An error on a page: one plain sentence for the student, the traceback only in the teacher's log.

Core raises its refusals (a limit, a folder outside the data roots, a damaged run, another
student's job) as exceptions whose message is already one sentence: those are shown as they are.
Anything else is a bug: it is logged with its traceback (core.logs: stderr and
<checkpoints>/.logs/ae-lab.log) and the page says UNEXPECTED, never the exception's own text (which
may hold a server path or a line of code).
"""
from __future__ import annotations

import logging

from ui.text import md_message

log = logging.getLogger(__name__)

UNEXPECTED = ("Something unexpected went wrong here; try again, and if it happens again tell your teacher "
              "(the server's log has the details).")


def _expected() -> tuple[type[BaseException], ...]:
    # Imported when an error happens, not when the app starts (core.experiments is not light).
    from core.bundles import BundleError
    from core.experiments import ExperimentError
    from core.jobs import USER_ERRORS
    from core.serving.access import OwnerError

    return (*USER_ERRORS, OwnerError, BundleError, ExperimentError)


def error_text(exc: BaseException) -> str:
    """What a page that caught `exc` shows (Markdown-safe): core's own sentence for a refusal;
    for anything else UNEXPECTED, with the traceback logged."""
    if isinstance(exc, _expected()):
        return md_message(exc)
    log.error("unexpected error on a page", exc_info=exc)
    return UNEXPECTED


def page_failed(exc: BaseException, page: str) -> str:
    """What app.py shows when `page` raised `exc` past its own handling: the traceback is logged
    whatever it is (the page should have caught it); a refusal still shows its sentence."""
    log.error("page %s failed", page, exc_info=exc)
    return md_message(exc) if isinstance(exc, _expected()) else UNEXPECTED
