"""The root of every error ctcd reports to a person: what is wrong, how to fix it, and the exit code.

Each part of ctcd raises a subclass of :class:`CtcdError` (``DatasetError``, ``GitError``, ``SettingError``…)
whose message names the setting, file or value at fault.  The CLI catches the root in one place and prints
``error: <message>`` and, when there is one, ``hint: <fix>``; nothing else reaches the user as a traceback.
Subclasses keep the built-in base they had (``ValueError``, ``RuntimeError``), so callers that catch those
still do.
"""

from __future__ import annotations


class CtcdError(Exception):
    """An error a user can act on.

    Args:
        message: What is wrong, naming the setting, file or value.
        hint: How to fix it, when the message does not already say.
        exit_code: The CLI's exit status for it (default: the class's ``exit_code``, 1).
    """

    exit_code: int = 1

    def __init__(self, message: str, hint: str = "", exit_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        if exit_code is not None:
            self.exit_code = exit_code

    def __str__(self) -> str:
        """The message, and the hint after it when there is one."""
        return f"{self.message} ({self.hint})" if self.hint else self.message
