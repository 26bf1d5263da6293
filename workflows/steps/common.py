"""What every step shares: its decorator, its retry policy and its clean exit.

``step`` puts every script on the trainer image with the settings environment, resources and the non-root
security context; ``RETRY`` retries steps that reach S3 or MLflow unless the input was refused; ``fail`` ends a
step with a message and an exit code that says whether a retry can help; ``outage_guard`` turns a service that
stops answering in the middle of a step into that retryable exit instead of a traceback.

No `from __future__ import annotations` in step modules: hera reads the real annotations of step functions.
"""

import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

from hera.workflows import ConfigMapEnvFrom, RetryStrategy, SecretEnvFrom, script
from hera.workflows.models import Backoff, IntOrString

from workflows.steps.pods import container_security, resources, step_env, trainer_image

BAD_INPUT, UNAVAILABLE = 2, 75  # exit codes: refused input is final; an unreachable service is retried
OUTAGE_GRACE = 10.0  # seconds a service may be gone mid-step (a restart) before the step gives up
RETRY = RetryStrategy(
    limit="2",
    retry_policy="Always",
    expression=f"asInt(lastRetry.exitCode) != {BAD_INPUT}",
    backoff=Backoff(duration="2s", factor=IntOrString("2"), max_duration="1m"),
)


def step(
    size: str = "small", env: list[ConfigMapEnvFrom | SecretEnvFrom] | None = None, **options: Any
) -> Callable[..., Any]:
    """A hera runner ``@script`` on the trainer image, non-root, with ``size`` resources and the settings env.

    Args:
        size: ``small`` for glue, ``train`` for fitting and scoring.
        env: The ``envFrom`` list (default: settings and S3 credentials).
        **options: Further ``script`` fields (``retry_strategy``, ``memoize``…).
    """
    return script(  # type: ignore[no-any-return]
        security_context=container_security(),
        constructor="runner",
        image=trainer_image(),
        env_from=env if env is not None else step_env(),
        resources=resources(size),
        **options,
    )


def fail(message: str, code: int = BAD_INPUT) -> NoReturn:
    """End the step with ``error: message`` on stderr instead of a traceback (exit code 2: not worth retrying)."""
    print(f"error: {message}", file=sys.stderr)
    sys.exit(code)


def require(settings: Any, services: tuple[str, ...], doing: str = "") -> None:
    """End the step with exit 75 and the variable to fix when one of ``services`` cannot be reached.

    Args:
        settings: The step's :class:`~workflows.settings.Settings`.
        services: ``s3`` and/or ``mlflow``.
        doing: A prefix for the message (``collection not started: ``).
    """
    from workflows.settings import SettingError

    try:
        for service in services:
            settings.require_reachable(service)
    except SettingError as exc:
        fail(f"{doing}{exc}", UNAVAILABLE)


def _unreachable(settings: Any, services: tuple[str, ...]) -> str | None:
    """The error of the first of ``services`` that does not answer now, if any."""
    from workflows.settings import SettingError

    for service in services:
        try:
            settings.require_reachable(service, timeout=1.0)
        except SettingError as lost:
            return str(lost)
    return None


_ON_ABORT: list[Callable[[], None]] = []


def on_abort(callback: Callable[[], None]) -> None:
    """Run ``callback`` (best effort, a few seconds at most) before the watcher ends the step for an outage."""
    _ON_ABORT.append(callback)


def _run_abort_callbacks(timeout: float = 3.0) -> None:
    def run_all() -> None:
        for callback in list(_ON_ABORT):
            try:
                callback()
            except Exception as exc:  # the step is ending anyway; say what could not be tidied
                print(f"warning: could not tidy up before exiting: {exc}", file=sys.stderr, flush=True)

    worker = threading.Thread(target=run_all, daemon=True)
    worker.start()
    worker.join(timeout)


def _watch(settings: Any, services: tuple[str, ...], grace: float, every: float, stop: threading.Event) -> None:
    """End the process (exit 75) once a service has been unreachable for ``grace`` seconds."""
    down_since: float | None = None
    while not stop.wait(every):
        lost = _unreachable(settings, services)
        if lost is None:
            down_since = None
            continue
        down_since = down_since or time.monotonic()
        if time.monotonic() - down_since >= grace:
            print(
                f"error: lost a service mid-step (gone for {grace:.0f}s or more): {lost}", file=sys.stderr, flush=True
            )
            _run_abort_callbacks()
            os._exit(UNAVAILABLE)  # library retries (presigned downloads: minutes) would otherwise hold the step


@contextmanager
def outage_guard(
    settings: Any, services: tuple[str, ...], grace: float = OUTAGE_GRACE, every: float = 2.0
) -> Iterator[None]:
    """End the step with exit 75 and the variable to fix when a service stops answering mid-step.

    Two ways: an exception raised inside the block makes each of ``services`` (``s3``, ``mlflow``) be probed
    again, and a watcher probes them every ``every`` seconds meanwhile, so a step whose libraries keep retrying
    a dead service ends after ``grace`` seconds instead of minutes.  Either way the step fails as unavailable
    (retried by ``RETRY``); an exception with every service answering propagates.

    Args:
        settings: The step's :class:`~workflows.settings.Settings`.
        services: The services the block talks to.
        grace: Seconds a service may stay unreachable before the step gives up.
        every: Seconds between the watcher's probes.
    """
    stop = threading.Event()
    threading.Thread(target=_watch, args=(settings, services, grace, every, stop), daemon=True).start()
    try:
        yield
    except Exception as exc:
        lost = _unreachable(settings, services)
        if lost is not None:
            fail(f"lost a service mid-step ({type(exc).__name__}): {lost}", UNAVAILABLE)
        if _lost_connection(exc):  # it answers again now: it restarted under the step
            fail(
                f"lost a service mid-step ({type(exc).__name__}; it answers again, so it restarted): {exc}"[:600],
                UNAVAILABLE,
            )
        raise
    finally:
        stop.set()


CONNECTION_ERRORS = (
    "ConnectionError",
    "ConnectTimeout",
    "ConnectTimeoutError",
    "ReadTimeout",
    "RemoteDisconnected",
    "ProtocolError",
    "EndpointConnectionError",
    "ConnectionClosedError",
    "NewConnectionError",
    "MaxRetryError",
)
CONNECTION_WORDS = ("Max retries exceeded", "Connection refused", "Connection aborted", "RemoteDisconnected")


def _lost_connection(exc: BaseException) -> bool:
    """Whether ``exc``, or an exception it was raised from, is a lost connection (not a bad input or a bug)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if any(cls.__name__ in CONNECTION_ERRORS for cls in type(current).__mro__):
            return True
        if any(word in str(current) for word in CONNECTION_WORDS):
            return True
        current = current.__cause__ or current.__context__
    return False
