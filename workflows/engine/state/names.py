"""Names that become paths: every run, template, CronWorkflow, ConfigMap or cache name is a Kubernetes object name.

Kubernetes names objects with DNS-1123 subdomains (lowercase letters, digits, ``-`` and ``.``, at most 253
characters, starting and ending with a letter or digit, no empty label), so ``..``, ``/`` and absolute paths can
never be one. The engine's store and the local platform check each name here before it touches the state folder,
whichever command brought it.
"""

from __future__ import annotations

import re

from workflows.errors import CtcdError

DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
MAX_LENGTH = 253


class InvalidName(CtcdError, ValueError):
    """A name that Kubernetes would refuse, and that must not become a path."""


def check(kind: str, name: str) -> str:
    """``name`` itself when it is a valid Kubernetes object name.

    Raises:
        InvalidName: Naming the kind, the name and the rule.
    """
    if isinstance(name, str) and len(name) <= MAX_LENGTH and DNS1123_SUBDOMAIN.match(name):
        return name
    shown = repr(name)[:80]
    raise InvalidName(
        f"{kind} name {shown} is not a valid Kubernetes name",
        hint="use lowercase letters, digits, '-' and '.', starting and ending with a letter or digit (DNS-1123)",
    )
