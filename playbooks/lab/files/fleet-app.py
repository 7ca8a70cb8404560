"""The fleet lab's application and worker (DRILL_SCENARIO=fleet): GET /health reads the settings (mode 0600, owned by
the app user) and asks the upstream they name: the application asks the database host's application (which counts
the orders in PostgreSQL), the worker asks the application. All must answer for a 200, so a host whose upstream is
not in service is not healthy either. It listens on its host's own address, port 8080."""
import json
import socket
import urllib.request
from http.server import BaseHTTPRequestHandler, HTTPServer

SETTINGS = "/srv/app/data/settings.json"


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's naming)
        if self.path != "/health":
            self.send_error(404)
            return
        try:
            with open(SETTINGS, encoding="utf-8") as handle:
                settings = json.load(handle)
            with urllib.request.urlopen(settings["upstream"], timeout=5) as response:  # noqa: S310 (lab URL)
                upstream = json.load(response)
            body = {"ok": bool(upstream.get("ok")), "role": settings["role"], "upstream": upstream}
            code = 200 if body["ok"] else 503
        except Exception as exc:  # noqa: BLE001 (report whatever broke)
            body, code = {"ok": False, "error": str(exc)}, 503
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


HTTPServer((socket.gethostbyname(socket.gethostname()), 8080), Handler).serve_forever()
