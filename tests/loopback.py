"""A web server on 127.0.0.1 (an ephemeral port) imitating figshare's API, Roadmap and ENCODE with tiny files.

``server.add(path, data, **how)`` serves ``data`` at ``path``; ``how`` misbehaves on purpose:
``status=403`` (always that answer), ``fail=2`` (500 twice, then the file), ``cut=True`` (the first answer stops
halfway through the body, with the full ``Content-Length``), ``stall=5.0`` (sleeps before the body),
``redirect="/other"`` (302), ``length=N`` (a lying ``Content-Length``), ``no_length=True`` (none: the body
ends when the connection closes), ``no_range=True`` (ignores ``Range``).
``server.requests`` records (path, Range header) of every GET.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Served:
    data: bytes
    how: dict = field(default_factory=dict)
    hits: int = 0


class LoopbackServer:
    def __init__(self) -> None:
        self.routes: dict[str, Served] = {}
        self.requests: list[tuple[str, str | None]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_):  # quiet
                pass

            def do_GET(self):  # noqa: N802
                server.requests.append((self.path, self.headers.get("Range")))
                s = server.routes.get(self.path) or server.routes.get(self.path.split("?")[0])
                if s is None:
                    return self.send_error(404)
                s.hits += 1
                how = s.how
                if "status" in how:
                    return self.send_error(how["status"])
                if how.get("fail", 0) >= s.hits:
                    return self.send_error(500)
                if "redirect" in how:
                    self.send_response(302)
                    self.send_header("Location", how["redirect"])
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return None
                data, start = s.data, 0
                rng = self.headers.get("Range")
                if rng and not how.get("no_range"):
                    start = int(rng.split("=")[1].split("-")[0])
                    if start >= len(data):
                        return self.send_error(416)
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                body = data[start:]
                if how.get("no_length"):  # the body ends when the connection closes
                    self.close_connection = True
                else:
                    self.send_header("Content-Length", str(how.get("length", len(body))))
                self.end_headers()
                if "stall" in how and s.hits <= how.get("stall_times", 10**9):
                    time.sleep(how["stall"])
                if how.get("cut") and s.hits == 1:
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return None
                self.wfile.write(body)
                return None

        class Quiet(ThreadingHTTPServer):
            def handle_error(self, request, client_address):  # a client that hung up on purpose
                pass

        self.httpd = Quiet(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def add(self, path: str, data: bytes, **how) -> str:
        self.routes[path] = Served(data, how)
        return self.url + path

    def add_json(self, path: str, obj) -> str:
        return self.add(path, json.dumps(obj).encode())

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def figshare_entry(server: LoopbackServer, file_id: int, name: str, data: bytes, *, api: dict | None = None,
                   direct: dict | None = None, md5_of: bytes | None = None, size: int | None = None) -> dict:
    """Serve ``data`` as figshare file ``file_id`` (API endpoint, and ``download_url`` answering 403 unless
    ``direct`` says otherwise); its listing entry."""
    server.add(f"/v2/file/download/{file_id}", data, **(api or {}))
    server.add(f"/ndownloader/files/{file_id}", data, **(direct if direct is not None else {"status": 403}))
    return {"id": file_id, "name": name, "size": len(data) if size is None else size,
            "computed_md5": md5(data if md5_of is None else md5_of),
            "download_url": f"{server.url}/ndownloader/files/{file_id}"}


def serve_article(server: LoopbackServer, files: list[dict]) -> str:
    """The article listing; returns the API base URL for ``CHROMOFORMER_FIGSHARE_API``."""
    server.add_json("/v2/articles/19424807/versions/4", {"id": 19424807, "version": 4, "files": files})
    return server.url + "/v2"
