"""A warm parent for local model servers: it imports the serving stack once, then forks one child per revision.

A model server spends most of its memory and start-up time on imports (KServe, FastAPI, scikit-learn, spaCy,
pandas), the same for every revision.  ``python -m serving.local.warm SOCKET`` imports them, freezes the garbage
collector's view of them (so that a child's collections do not write to, and copy, the shared pages), and then
answers one request per connection on a Unix socket: ``{"argv": [...], "log": PATH}`` forks a child that runs
``python -m serving`` with those arguments, its output appended to ``PATH``, and replies ``{"pid": N}``.

Each child is a process of its own, in a process group of its own: a crash or a kill -9 of one revision takes no
other down, as with separate processes.  The parent reaps its children and writes each one's exit code to
``<exits>/<pid>``, so local serving can tell a refused artifact (exit code 3) from a crash.
"""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import os
import signal
import socket
import sys
from pathlib import Path
from typing import Any

_logger = logging.getLogger(__name__)


def preload() -> None:
    """Import what every model server imports, before any fork."""
    sys.argv = sys.argv[:1]  # kserve parses sys.argv on import
    import cloudpickle  # noqa: F401
    import kserve  # noqa: F401
    import pandas  # noqa: F401
    import sklearn.pipeline  # noqa: F401
    import sklearn.svm  # noqa: F401
    import uvicorn  # noqa: F401
    from kserve import model_server  # noqa: F401

    import serving.__main__  # noqa: F401
    import serving.predictor  # noqa: F401

    with contextlib.suppress(ImportError):  # the text techniques' tokenizer: the largest import after KServe's
        import spacy  # noqa: F401
    with contextlib.suppress(ImportError, OSError):  # pretrained weights a technique ships: loaded once, shared
        from models.intent_classifier.embeddings import encoder

        encoder()


def _reap(exits: Path) -> None:
    """Collect every child that ended, writing its exit code where local serving looks for it."""
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        tmp = exits / f".{pid}.tmp"
        try:
            tmp.write_text(str(os.waitstatus_to_exitcode(status)))
            tmp.replace(exits / str(pid))
        except OSError as exc:  # a full disk: serving then counts this exit as a crash, and the parent lives on
            _logger.warning("cannot record the exit of model server %d: %s", pid, exc)


def _child(listener: socket.socket, request: dict[str, Any], ack: int) -> None:
    """In the forked child: a process group of its own, output to the log, then the model server.

    It starts only once the parent has told local serving its pid (one byte on ``ack``).  If the parent dies
    or cannot reply first, nobody would know this process, so it exits before it takes a port.
    """
    code = 1
    try:
        os.setpgid(0, 0)
        listener.close()
        if os.read(ack, 1) != b"1":
            os._exit(1)
        os.close(ack)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        log = os.open(request["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        from serving.__main__ import main

        code = main([str(a) for a in request["argv"]])
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:  # the child must never return into the parent's loop
        import traceback

        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _answer(listener: socket.socket, conn: socket.socket, exits: Path) -> None:
    """Read one request from ``conn``, fork its child, reply with the child's pid."""
    with conn, conn.makefile("rwb") as stream:
        request = json.loads(stream.readline())
        Path(request["log"]).parent.mkdir(parents=True, exist_ok=True)
        ack, acked = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(acked)
            _child(listener, request, ack)
        os.close(ack)
        with contextlib.suppress(OSError):  # the child may have done it, or be gone already
            os.setpgid(pid, pid)
        try:
            stream.write(json.dumps({"pid": pid}).encode() + b"\n")
            stream.flush()
            os.write(acked, b"1")
        finally:
            os.close(acked)  # unacknowledged (local serving gone before the reply): the child exits on its own


def serve(path: Path) -> None:
    """Import once, then fork a model server for each request on the Unix socket at ``path``."""
    exits = path.parent / "exits"
    exits.mkdir(parents=True, exist_ok=True)
    preload()
    gc.freeze()  # the imported objects stay out of every child's collections, so their pages stay shared
    signal.signal(signal.SIGCHLD, lambda *_: _reap(exits))
    path.unlink(missing_ok=True)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(16)
    while True:
        conn, _ = listener.accept()
        try:
            _answer(listener, conn, exits)
        except (OSError, ValueError, KeyError) as exc:  # a bad request or a closed peer: the next one is served
            _logger.warning("request refused: %s", exc)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s warm parent: %(message)s")
    serve(Path(sys.argv[1]))
