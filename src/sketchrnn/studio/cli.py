"""``sketchrnn studio``: registers the verb with :mod:`sketchrnn.cli` (imported by its
``_load_extensions``). Nothing heavy is imported here: the web framework loads only when
the verb runs, so the rest of the CLI works without the ``studio`` extra."""

from __future__ import annotations

import argparse

from ..cli import _EXTRA_PARSERS, verb


def add_parser(sub: argparse._SubParsersAction) -> None:
    s = sub.add_parser("studio", help="local web page: draw, and let models complete, reconstruct, interpolate, sample",
                       description="Serve the sketch studio (one page and a JSON API, OpenAPI at /openapi.json). "
                                   "Binds to loopback by default; it has no authentication.")
    s.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    s.add_argument("--port", type=int, default=8000, help="TCP port (default 8000; 0 = any free port)")
    s.add_argument("--models", nargs="*", default=[], metavar="PATH",
                   help="folders (searched one level deep) or files: .safetensors, Magenta .gen.json, checkpoints .pt")
    s.add_argument("--no-shipped", action="store_true", help="do not offer the models shipped with the package")
    s.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    s.add_argument("--log-level", default="warning", choices=["critical", "error", "warning", "info", "debug"])


_EXTRA_PARSERS.append(add_parser)


@verb("studio")
def cmd_studio(a: argparse.Namespace) -> int:
    from .server import serve

    return serve(host=a.host, port=a.port, models=a.models, include_shipped=not a.no_shipped,
                 threads=a.threads, log_level=a.log_level)
