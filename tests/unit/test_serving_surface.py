"""What the model server relies on in KServe, pinned: an upgrade that changes it fails here, loudly, not in serving.

The entrypoint uses KServe's public surface (its flag parser, its ASGI app, its RESTServer class); the one thing
KServe gives no setting for, the address it listens on, is set by a RESTServer subclass built from these facts.
"""

from __future__ import annotations

import inspect

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError


def test_the_flags_are_kserve_s_parser_plus_ctcd_s() -> None:
    from serving.__main__ import parser

    given = ["--model_name", "m", "--model_dir", "/tmp/m", "--http_port", "9001", "--bind", "0.0.0.0"]
    args = parser().parse_args(given)
    assert (args.model_name, args.model_dir, args.http_port, args.bind) == ("m", "/tmp/m", 9001, "0.0.0.0")
    assert args.enable_latency_logging is False  # KServe's own flag, off here unless asked for
    assert parser().parse_args([*given, "--enable_latency_logging", "true"]).enable_latency_logging is True


def test_model_server_builds_its_rest_server_from_the_module_s_restserver_name() -> None:
    from kserve import ModelServer, model_server
    from kserve.protocol.rest.server import RESTServer

    assert model_server.RESTServer is RESTServer
    assert "RESTServer(" in inspect.getsource(ModelServer.start)


def test_kserve_listens_on_every_address_and_the_subclass_on_the_one_given() -> None:
    from kserve.protocol.rest.server import RESTServer

    from serving.__main__ import loopback_server

    assert RESTServer("kserve.model_server:app", None, None, 9002).config.host == "0.0.0.0"
    assert loopback_server("127.0.0.1")("kserve.model_server:app", None, None, 9002).config.host == "127.0.0.1"


def test_kserve_answers_no_request_validation_error_itself_so_ctcd_s_400_stands() -> None:
    from kserve.protocol.rest.server import RESTServer

    from serving import errors

    app = FastAPI()
    errors.install(app)
    RESTServer._add_exception_handlers(RESTServer.__new__(RESTServer), app)  # what KServe adds at start
    assert app.exception_handlers[RequestValidationError] is errors.request_validation_error


def test_the_app_kserve_serves_is_the_public_module_level_one() -> None:
    from kserve import model_server
    from kserve.protocol.rest.server import RESTServer

    assert isinstance(model_server.app, FastAPI)
    assert '"kserve.model_server:app"' in inspect.getsource(RESTServer.create_application)
