"""A file server on 127.0.0.1 for download tests: no test reaches the internet."""

from __future__ import annotations

import contextlib
import dataclasses
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


@dataclasses.dataclass
class Served:
    """The server's base URL, the paths it was asked for, and paths whose next transfer it cuts
    short (a full Content-Length, half the bytes, then the connection closed)."""

    url: str
    requests: list[str] = dataclasses.field(default_factory=list)
    cut_next: set[str] = dataclasses.field(default_factory=set)


@contextlib.contextmanager
def serve(folder: Path) -> Iterator[Served]:
    """Serve folder's files over HTTP on a free port of 127.0.0.1 while the block runs."""
    served = Served("")

    class Handler(SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(folder), **kwargs)

        def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
            served.requests.append(self.path)
            if self.path not in served.cut_next:
                return super().do_GET()
            served.cut_next.discard(self.path)
            body = (folder / self.path.lstrip("/")).read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.close_connection = True

        def log_message(self, *args: Any) -> None:  # keep the test output quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    served.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield served
    finally:
        server.shutdown()
        server.server_close()
