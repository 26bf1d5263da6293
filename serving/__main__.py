"""``python -m serving``: the predictor container's entrypoint (and one local revision's process).

Flags: ``--model_name``, ``--model_dir``, ``--sha256`` (else ``CTCD_MODEL_SHA256``), ``--http_port``,
``--bind`` (127.0.0.1 by default; a container passes 0.0.0.0), ``--request_log`` (else ``CTCD_REQUEST_LOG``).

Per-request lines (the access log and KServe's timing and latency lines, four per request) are off unless
asked for: they cost about a tenth of the request time, and ``/metrics`` carries the same latencies.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import warnings


def _args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m serving", description=__doc__)
    parser.add_argument("--model_name", required=True)
    parser.add_argument("--model_dir", required=True)
    parser.add_argument("--sha256", default=os.environ.get("CTCD_MODEL_SHA256", ""))
    parser.add_argument("--http_port", type=int, default=8080)
    parser.add_argument("--bind", default=os.environ.get("CTCD_BIND_HOST", "127.0.0.1"))
    parser.add_argument(
        "--request_log",
        action="store_true",
        default=os.environ.get("CTCD_REQUEST_LOG", "").lower() in ("1", "true", "yes"),
        help="log every request (access, timing and latency lines)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Load the model (refusing a bad artifact) and serve it until stopped."""
    args = _args(sys.argv[1:] if argv is None else argv)
    sys.argv = sys.argv[:1]  # kserve parses sys.argv when imported; give it nothing of ours
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    if not args.request_log:
        for name in ("uvicorn.access", "kserve.trace"):
            logging.getLogger(name).setLevel(logging.WARNING)
    # KServe's own response class; re-shown whenever a library resets the warning registry (every batch)
    warnings.filterwarnings("ignore", message="ORJSONResponse is deprecated")
    from kserve import ModelServer
    from kserve.protocol.rest import server as rest

    from serving import errors
    from serving.predictor import ArtifactError, Predictor

    original = rest.RESTServer.__init__

    def bind_to(self: rest.RESTServer, *a: object, **kw: object) -> None:  # KServe hard-codes 0.0.0.0
        original(self, *a, **kw)
        self.config.host = args.bind

    rest.RESTServer.__init__ = bind_to  # type: ignore[method-assign]
    handlers = rest.RESTServer._add_exception_handlers

    def add_handlers(self: rest.RESTServer, app: object) -> None:  # answers KServe's 422s without a 500
        handlers(self, app)
        errors.install(app)

    rest.RESTServer._add_exception_handlers = add_handlers  # type: ignore[method-assign]
    model = Predictor(args.model_name, args.model_dir, args.sha256)
    try:
        model.load()
    except (ArtifactError, OSError) as exc:
        logging.error("refusing to serve %s: %s", args.model_name, exc)
        return 3
    server = ModelServer(
        http_port=args.http_port, enable_grpc=False, workers=1, enable_latency_logging=args.request_log
    )
    server.start([model])
    return 0


if __name__ == "__main__":
    sys.exit(main())
