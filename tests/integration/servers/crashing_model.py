"""``python -m tests.integration.servers.crashing_model PORT``: a KServe server whose model raises on ``{"bad": true}``.

``{"sleep": S}`` makes it answer only after S seconds.

A model that raises anything but ``InvalidInput`` gets KServe's 500, as a predictor bug would.
"""

from __future__ import annotations

import sys
from typing import Any


def main() -> None:
    port = int(sys.argv[1])
    sys.argv = sys.argv[:1]
    import kserve
    from kserve.protocol.rest import server as rest

    original = rest.RESTServer.__init__

    def loopback(self: Any, *a: Any, **kw: Any) -> None:
        original(self, *a, **kw)
        self.config.host = "127.0.0.1"

    rest.RESTServer.__init__ = loopback

    class Crashing(kserve.Model):  # type: ignore[misc]
        def load(self) -> bool:
            self.ready = True
            return True

        async def predict(self, payload: Any, headers: Any = None, response_headers: Any = None) -> Any:
            if payload.get("bad"):
                raise ValueError("month must be in 1..12")
            if payload.get("sleep"):  # a model busy for that long (the gateway's timeout is tested with it)
                import asyncio

                await asyncio.sleep(float(payload["sleep"]))
            return {"predictions": [{"label": "ok"}]}

    model = Crashing("m")
    model.load()
    kserve.ModelServer(http_port=port, enable_grpc=False, workers=1).start([model])


if __name__ == "__main__":
    main()
