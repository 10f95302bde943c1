"""Running the studio with uvicorn: in the foreground (CLI) or in a background thread
(tests, benchmarks). The listening socket is bound here, before uvicorn starts, so a busy
port is a clear one-line error rather than a log message and ``sys.exit`` inside uvicorn."""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from typing import Any, Sequence

from ..errors import ConfigError

__all__ = ["bind_socket", "is_loopback", "BackgroundServer", "serve"]


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0 = any free port)."""
    if not 0 <= int(port) <= 65535:
        raise ConfigError(f"--port {port} is not a TCP port (0-65535)")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as e:
        raise ConfigError(f"--host {host!r} cannot be resolved ({e.strerror}); use an IP address such as 127.0.0.1") from None
    family, _, _, _, addr = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(addr)
        sock.listen(128)
    except OSError as e:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port} ({e.strerror}); choose another --port") from None
    sock.set_inheritable(True)
    return sock


def _uvicorn_server(app: Any, log_level: str):
    import uvicorn

    config = uvicorn.Config(app, log_level=log_level, access_log=False, limit_concurrency=256,
                            timeout_keep_alive=5, lifespan="off")
    return uvicorn.Server(config)


class BackgroundServer:
    """``with BackgroundServer(app) as srv: ... srv.url ...``: uvicorn in a daemon thread on a
    free loopback port, stopped (and joined) on exit."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0, log_level: str = "warning") -> None:
        self.app = app
        self.sock = bind_socket(host, port)
        self.host, self.port = self.sock.getsockname()[:2]
        self.url = f"http://{self.host}:{self.port}"
        self.server = _uvicorn_server(app, log_level)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True,
                                       name="sketchrnn-studio")

    def start(self, timeout: float = 20.0) -> "BackgroundServer":
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("studio server did not start")
            time.sleep(0.02)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout)
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self) -> "BackgroundServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def serve(host: str = "127.0.0.1", port: int = 8000, models: Sequence[str] = (), include_shipped: bool = True,
          threads: int = 1, log_level: str = "warning", say=print) -> int:
    """Run the studio in the foreground until Ctrl-C."""
    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as e:
        raise ConfigError(f"the studio needs the optional packages starlette and uvicorn ({e.name} is missing); "
                          "install them with: pip install 'sketchrnn[studio]'") from None
    import torch

    from .app import LOOPBACK_HOSTS, create_app
    from .registry import ModelRegistry

    if threads < 1:
        raise ConfigError(f"--threads must be >= 1, got {threads}")
    torch.set_num_threads(threads)
    registry = ModelRegistry.discover(models, include_shipped=include_shipped)
    if not len(registry):
        raise ConfigError("the studio found no models: pass --models FOLDER (with .safetensors, .gen.json or .pt "
                          "files) or install the shipped weights")
    if is_loopback(host):
        hosts: list[str] = list(LOOPBACK_HOSTS)
    else:
        say(f"warning: the studio has no authentication; anyone who can reach {host}:{port} can use it")
        hosts = ["*"] if host in ("0.0.0.0", "::") else [host, *LOOPBACK_HOSTS]
    app = create_app(registry, allowed_hosts=hosts)
    sock = bind_socket(host, port)
    shown = f"[{host}]" if ":" in host else host
    say(f"sketchrnn studio: {len(registry)} model(s) ({', '.join(registry.names()[:8])}"
        f"{', ...' if len(registry) > 8 else ''}) at http://{shown}:{sock.getsockname()[1]}/  (Ctrl-C stops)")
    server = _uvicorn_server(app, log_level)
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
    return 0
