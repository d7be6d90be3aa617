"""The one exception type users see.

Every bad input (missing or corrupt file, wrong index, unknown title, bad recipe, invalid key,
unreachable endpoint) is raised as a ``WikipersonaError`` whose message is a single line that names
the file, offset, field or value at fault. The CLI prints it as ``error: <message>`` and exits
non-zero instead of showing a traceback.
"""

from __future__ import annotations


class WikipersonaError(Exception):
    """A user-facing failure: ``str(err)`` is one line that says what and where."""

    exit_code: int = 2

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))


class InputError(WikipersonaError):
    """A file or argument given by the user cannot be used as it is."""


class ConfigError(WikipersonaError):
    """A recipe or option is invalid (unknown key, missing file, bad value)."""


class LLMError(WikipersonaError):
    """The LLM endpoint refused or failed in a way retrying cannot fix."""


class BudgetExceeded(WikipersonaError):
    """Scheduling stopped because the projected spend would pass ``--max-usd``."""


class NoDataError(WikipersonaError):
    """The build would release an empty split or config; nothing was written (the work dir keeps the calls)."""
