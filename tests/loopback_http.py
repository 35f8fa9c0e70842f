"""A directory served over HTTP on 127.0.0.1 by a thread of the test (Python's http.server):
what remote-file :url downloads in the offline tests, with no internet."""
from __future__ import annotations

from pathlib import Path


class Served:
    """A directory served over HTTP on 127.0.0.1 by a thread of the test (http.server), with
    the paths asked for, in order."""

    def __init__(self, root: Path):
        import functools
        import http.server
        import threading
        self.asked: list[str] = []
        served = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def do_GET(self):           # noqa: N802 (http.server's name)
                served.asked.append(self.path)
                super().do_GET()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
