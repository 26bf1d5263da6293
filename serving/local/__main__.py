"""``python -m serving.local``: reconcile gitops@main into model servers and serve the gateway on 127.0.0.1.

Every environment's overlays are served, each in its own namespace.  Environment: ``CTCD_STATE_DIR``,
``CTCD_GIT_REMOTE``, ``CTCD_GIT_BRANCH``, ``CTCD_GATEWAY_PORT``, ``CTCD_GATEWAY_TIMEOUT`` (30 s),
``CTCD_SERVING_DOMAIN`` (example.com), ``CTCD_FEEDBACK_URL`` (where ``POST /v1/feedback`` goes),
``CTCD_S3_ENDPOINT_URL`` and the S3 keys (or the state folder's).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path

import uvicorn

from serving import predlog, shared
from serving.local import gateway, source
from serving.local.reconcile import Reconciler

_logger = logging.getLogger("serving.local")


class Loop:
    """Polls the remote and drives the reconciler; the gateway reads ``routes``/``graphs``/``commit``."""

    def __init__(self, reconciler: Reconciler, remote: str, branch: str) -> None:
        self.reconciler, self.remote, self.branch = reconciler, remote, branch
        self.routes = reconciler.routes()
        self.versions = reconciler.versions()
        self.graphs = reconciler.graphs
        self.commit = reconciler.commit
        self.problems: list[str] = ["starting: no reconcile pass yet"]
        self.stopping = threading.Event()

    def once(self) -> None:
        """One pass: take a new commit if main moved, then advance revisions and publish routes."""
        commit = source.head(self.remote, self.branch)
        if commit and commit != self.reconciler.commit:
            try:
                self.reconciler.apply(commit, source.render(self.remote, commit))
                self.reconciler.error = ""
                _logger.info("applied %s", commit[:12])
            except Exception as exc:  # a broken commit must not stop serving what runs
                _logger.error("cannot apply %s: %s", commit[:12], exc)
                self.reconciler.commit = commit
                self.reconciler.error = f"cannot apply {commit[:12]}: {str(exc).splitlines()[0] if str(exc) else exc!r}"
        self.reconciler.step()
        self.routes, self.graphs, self.commit = self.reconciler.routes(), dict(self.reconciler.graphs), commit
        self.versions = self.reconciler.versions()
        self.problems = self.reconciler.problems() + ([] if commit else ["the GitOps remote is not reachable"])

    def run(self) -> None:
        """Reconcile every half second until stopped."""
        while not self.stopping.is_set():
            try:
                self.once()
            except Exception:  # keep the loop alive; the error is logged
                _logger.exception("reconcile pass failed")
            self.stopping.wait(0.5)


def _prediction_log(state_dir: Path) -> predlog.LogWriter:
    """The prediction log's writer into ``CTCD_PREDICTIONS_BUCKET`` (ctcd-predictions)."""
    client = source.s3_client(state_dir)
    bucket = os.environ.get("CTCD_PREDICTIONS_BUCKET", "ctcd-predictions")
    return predlog.LogWriter(lambda key, body: client.put_object(Bucket=bucket, Key=key, Body=body))


def main() -> None:
    """Start the reconcile loop and the gateway; stop every model server on exit."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    state_dir = Path(os.environ["CTCD_STATE_DIR"])
    port = int(os.environ.get("CTCD_GATEWAY_PORT", str(shared.DEFAULT_GATEWAY_PORT)))
    domain = os.environ.get("CTCD_SERVING_DOMAIN", shared.DEFAULT_DOMAIN)
    reconciler = Reconciler(state_dir, source.s3_fetcher(state_dir), f"http://127.0.0.1:{port}", domain)
    loop = Loop(reconciler, os.environ["CTCD_GIT_REMOTE"], os.environ.get("CTCD_GIT_BRANCH", "main"))
    worker = threading.Thread(target=loop.run, daemon=True)
    worker.start()
    try:
        timeout = float(os.environ.get("CTCD_GATEWAY_TIMEOUT", "30"))
        writer = _prediction_log(state_dir)
        labels = os.environ.get("CTCD_FEEDBACK_URL") or None
        secret = state_dir / "prediction-log-key"  # made at `ctcd up`, mode 0600
        privacy = predlog.Privacy.of_techniques(secret.read_bytes() if secret.exists() else os.urandom(32))
        forward = gateway.app(loop, domain=domain, timeout=timeout, log=writer, feedback_url=labels, privacy=privacy)
        uvicorn.run(forward, host="127.0.0.1", port=port, log_level="warning")  # its shutdown flushes the log
    finally:
        loop.stopping.set()
        worker.join(timeout=5)
        time.sleep(0.1)
        reconciler.stop_all()


if __name__ == "__main__":
    main()
