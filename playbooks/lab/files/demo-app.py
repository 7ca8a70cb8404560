"""The lab's application: GET /health reads its settings (mode 0600, owned by the app user) and counts the orders
in PostgreSQL. Both must work for a 200: a restore with the wrong owners or without the database fails here.
In the fleet drill (DRILL_SCENARIO=fleet) the application host and the worker run it too, with an "upstream" in
their settings: they ask that URL instead (the application asks the database host, the worker the application), so
a host whose upstream is not in service is not healthy either.
It listens on its host's own address (what the host's name resolves to), port 8080, as a server would: lab hosts
share the machine's network, so 127.0.0.1 is not theirs alone."""
import json
import socket
import subprocess
import urllib.request
from http.server import BaseHTTPRequestHandler, HTTPServer

SETTINGS = "/srv/app/data/settings.json"


def health(settings):
    if "upstream" in settings:
        with urllib.request.urlopen(settings["upstream"], timeout=5) as response:  # noqa: S310 (lab URL)
            upstream = json.load(response)
        return {"ok": bool(upstream.get("ok")), "role": settings["role"], "upstream": upstream}
    count = subprocess.run(["psql", "-XtAc", "SELECT count(*) FROM orders", "shop"], capture_output=True,
                           text=True, check=True, timeout=10).stdout.strip()
    return {"ok": True, "orders": int(count), "shop": settings["shop"]}


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's naming)
        if self.path != "/health":
            self.send_error(404)
            return
        try:
            with open(SETTINGS, encoding="utf-8") as handle:
                body = health(json.load(handle))
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
