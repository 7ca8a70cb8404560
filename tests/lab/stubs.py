"""Small servers the lab and the tests talk to, each on a loopback address, each stopping by itself.

    stubs.py webhook ADDR PORT OUT.jsonl [--seconds N]    record every POSTed JSON body as one line of OUT.jsonl
    stubs.py smtp ADDR PORT OUTDIR [--seconds N]          accept mail and write each message to OUTDIR/<n>.eml
    stubs.py api ADDR PORT GOOD_TOKEN|@FILE [--seconds N] an HTTP API: 200 "pong" for `Authorization: Bearer GOOD`,
                                                          403 "revoked" for any other token, 401 without one

Standard library only (it also runs inside the lab's containers). Each server serves until --seconds pass (default
1800) so that a test that dies never leaves one behind for long; tests stop it by PID.
"""

from __future__ import annotations

import argparse
import json
import os
import socketserver
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer


class Webhook(BaseHTTPRequestHandler):
    out = ""

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        try:
            doc = json.loads(body)
        except ValueError:
            doc = {"unparsed": body.decode("utf-8", "replace")}
        with open(self.out, "a", encoding="utf-8") as handle:
            # The path is not kept: a webhook URL carries its own token, which only the receiver may know.
            handle.write(json.dumps({"body": doc}) + "\n")
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


class Api(BaseHTTPRequestHandler):
    good = ""

    def do_GET(self) -> None:
        auth = self.headers.get("Authorization") or ""
        if not auth:
            code, text = 401, "no token"
        elif auth == f"Bearer {self.good}":
            code, text = 200, "pong"
        else:
            code, text = 403, "revoked"
        data = text.encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


class Smtp(socketserver.StreamRequestHandler):
    outdir = ""
    count = 0
    lock = threading.Lock()

    def reply(self, line: str) -> None:
        self.wfile.write((line + "\r\n").encode())

    def handle(self) -> None:
        self.reply("220 restoreops-lab ESMTP")
        data: list[str] = []
        in_data = False
        while True:
            raw = self.rfile.readline()
            if not raw:
                return
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            if in_data:
                if line == ".":
                    in_data = False
                    with Smtp.lock:
                        Smtp.count += 1
                        name = os.path.join(self.outdir, f"{os.getpid()}-{Smtp.count}.eml")
                    with open(name, "w", encoding="utf-8") as handle:
                        handle.write("\n".join(data) + "\n")
                    data = []
                    self.reply("250 queued")
                else:
                    data.append(line[1:] if line.startswith("..") else line)
                continue
            verb = line.split(" ", 1)[0].upper()
            if verb in ("EHLO", "HELO"):
                self.reply("250 restoreops-lab")
            elif verb == "DATA":
                in_data = True
                self.reply("354 end with .")
            elif verb == "QUIT":
                self.reply("221 bye")
                return
            else:  # MAIL, RCPT, RSET, NOOP
                self.reply("250 ok")


class ThreadedTCP(socketserver.ThreadingMixIn, socketserver.TCPServer):
    allow_reuse_address = True
    daemon_threads = True


def serve(server: socketserver.BaseServer, seconds: float) -> None:
    timer = threading.Timer(seconds, server.shutdown)
    timer.daemon = True
    timer.start()
    server.serve_forever(poll_interval=0.2)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("kind", choices=["webhook", "smtp", "api"])
    parser.add_argument("addr")
    parser.add_argument("port", type=int)
    parser.add_argument("target", help="the JSON-lines file, the mail directory, or the good token")
    parser.add_argument("--seconds", type=float, default=1800)
    args = parser.parse_args()
    if args.kind == "webhook":
        Webhook.out = args.target
        server: socketserver.BaseServer = HTTPServer((args.addr, args.port), Webhook)
    elif args.kind == "api":
        if args.target.startswith("@"):  # the token from a file, off the command line
            with open(args.target[1:], encoding="utf-8") as handle:
                Api.good = handle.read().strip()
        else:
            Api.good = args.target
        server = HTTPServer((args.addr, args.port), Api)
    else:
        os.makedirs(args.target, exist_ok=True)
        Smtp.outdir = args.target
        server = ThreadedTCP((args.addr, args.port), Smtp)
    serve(server, args.seconds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
