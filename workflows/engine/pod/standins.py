"""Local programs that stand in for well-known images' entrypoints (see :mod:`workflows.engine.pod.images`).

``python -m workflows.engine.pod.standins argosay ARGS…`` behaves as Argo's ``argosay`` test image;
``python -m workflows.engine.pod.standins nginx`` serves nginx's welcome page on port 80 of the pod's loopback address
(``CTCD_POD_IP``, 127.0.0.1 for a sidecar) until it is stopped.
"""

from __future__ import annotations

import http.server
import os
import subprocess
import sys
import time
from pathlib import Path

WELCOME = (
    b"<!DOCTYPE html><html><head><title>Welcome to nginx!</title></head>\n"
    b"<body><h1>Welcome to nginx!</h1></body></html>\n"
)


def argosay(args: list[str]) -> int:
    """Argo's argosay: ``echo``, ``cat``, ``sleep``, ``exit``, ``assert_contains``, ``sh``; none: ``hello argo``."""
    verb, rest = (args[0], args[1:]) if args else ("", [])
    if verb == "":
        print("hello argo")
    elif verb == "echo":
        return _echo(rest)
    elif verb == "cat":
        sys.stdout.write(Path(rest[0]).read_text())
    elif verb == "sleep":
        time.sleep(_seconds(rest[0]))
    elif verb == "exit":
        return int(rest[0]) if rest else 0
    elif verb == "assert_contains":
        return 0 if rest[1] in Path(rest[0]).read_text() else 1
    elif verb == "sh":
        return subprocess.call(["sh", rest[0] if rest else "0"])
    else:
        print(f"argosay: unknown command {verb!r}", file=sys.stderr)
        return 1
    return 0


def _echo(rest: list[str]) -> int:
    if len(rest) > 2:
        return 0  # the image's script matches no case then, and exits 0 having said nothing
    text = rest[0] if rest else "hello argo"
    if len(rest) == 2:
        target = Path(rest[1])
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text + "\n")
    else:
        print(text)
    return 0


def _seconds(text: str) -> float:
    units = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
    for unit in ("ms", "s", "m", "h"):
        if text.endswith(unit) and text[: -len(unit)].replace(".", "", 1).isdigit():
            return float(text[: -len(unit)]) * units[unit]
    return float(text)


class _Welcome(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(WELCOME)))
        self.end_headers()
        self.wfile.write(WELCOME)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - http.server's signature
        sys.stderr.write(f"{self.address_string()} - {format % args}\n")


def nginx() -> int:
    """Serve the welcome page on 127.0.0.1:80, as the nginx image does on its pod's address."""
    address = os.environ.get("CTCD_POD_IP", "127.0.0.1")
    server = http.server.ThreadingHTTPServer((address, 80), _Welcome)
    print(f"nginx stand-in serving on {address}:80", flush=True)
    server.serve_forever()
    return 0


def cowsay(args: list[str]) -> int:
    """The message in a speech bubble, as whalesay's ``cowsay`` prints it."""
    text = " ".join(args) or sys.stdin.read().strip()
    print(" " + "_" * (len(text) + 2))
    print(f"< {text} >")
    print(" " + "-" * (len(text) + 2))
    print("    \\\n     \\\n      ~~~ the whale ~~~")
    return 0


def main(argv: list[str]) -> int:
    """Dispatch to the stand-in named first."""
    if argv and argv[0] == "cowsay":
        return cowsay(argv[1:])
    if argv and argv[0] == "argosay":
        return argosay(argv[1:])
    if argv and argv[0] == "nginx":
        return nginx()
    print(f"no stand-in named {argv[:1]}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
