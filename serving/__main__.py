"""``python -m serving``: the predictor container's entrypoint (and one local revision's process).

The flags are KServe's own (``kserve.model_server.parser``: ``--model_name``, ``--http_port``,
``--enable_latency_logging``…), as KServe's ``sklearnserver`` builds them, plus ctcd's: ``--model_dir``,
``--sha256`` (else ``CTCD_MODEL_SHA256``), ``--bind`` (127.0.0.1 by default; a container passes 0.0.0.0) and
``--request_log`` (else ``CTCD_REQUEST_LOG``).

ctcd's answers (the 400 for a bad body, the body limit, JSON by default) are installed on KServe's public ASGI app,
``kserve.model_server.app``. KServe has no setting for the address it listens on, so :class:`LoopbackServer`, a
subclass of its ``RESTServer``, sets uvicorn's host; ``tests/unit/test_serving_surface.py`` pins what it relies on.

Per-request lines (the access log and KServe's timing and latency lines, four per request) are off unless
asked for: they cost about a tenth of the request time, and ``/metrics`` carries the same latencies.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import warnings
from typing import Any


def parser() -> argparse.ArgumentParser:
    """KServe's model-server flags, and ctcd's."""
    from kserve import model_server

    built = argparse.ArgumentParser(prog="python -m serving", parents=[model_server.parser], description=__doc__)
    built.add_argument("--model_dir", required=True)
    built.add_argument("--sha256", default=os.environ.get("CTCD_MODEL_SHA256", ""))
    built.add_argument("--bind", default=os.environ.get("CTCD_BIND_HOST", "127.0.0.1"))
    built.add_argument(
        "--request_log",
        action="store_true",
        default=os.environ.get("CTCD_REQUEST_LOG", "").lower() in ("1", "true", "yes"),
        help="log every request (access, timing and latency lines)",
    )
    built.set_defaults(enable_latency_logging=False)  # off unless asked for, as every per-request line here
    return built


def loopback_server(host: str) -> type[Any]:
    """KServe's RESTServer listening on ``host`` (KServe itself always listens on 0.0.0.0)."""
    from kserve.protocol.rest.server import RESTServer

    class LoopbackServer(RESTServer):  # type: ignore[misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.config.host = host

    return LoopbackServer


def main(argv: list[str] | None = None) -> int:
    """Load the model (refusing a bad artifact) and serve it until stopped."""
    warnings.filterwarnings("ignore", message="ORJSONResponse is deprecated")  # KServe's own response class
    sys.argv, given = sys.argv[:1], sys.argv[1:] if argv is None else argv  # kserve parses sys.argv on import
    args = parser().parse_args(given)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    if not args.request_log:
        for name in ("uvicorn.access", "kserve.trace"):
            logging.getLogger(name).setLevel(logging.WARNING)
    from kserve import ModelServer, model_server

    from serving import errors
    from serving.predictor import ArtifactError, Predictor

    errors.install(model_server.app)
    model_server.RESTServer = loopback_server(args.bind)  # the one name ModelServer.start builds its server from
    model = Predictor(args.model_name, args.model_dir, args.sha256)
    try:
        model.load()
    except (ArtifactError, OSError) as exc:
        logging.error("refusing to serve %s: %s", args.model_name, exc)
        return 3
    latency = args.request_log or args.enable_latency_logging
    server = ModelServer(http_port=args.http_port, enable_grpc=False, workers=1, enable_latency_logging=latency)
    server.start([model])
    return 0


if __name__ == "__main__":
    sys.exit(main())
