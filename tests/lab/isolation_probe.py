"""The ransomware drill's isolation proof inside the affected container (its own network namespace).

  isolation_probe.py listen ADDR:PORT...      accept and close connections on each address (runs until killed)
  isolation_probe.py connect SRC DST:PORT     one TCP connection from SRC; prints connected/refused, exit 0/1
"""
import socket
import sys
import threading


def endpoint(text):
    host, _sep, port = text.rpartition(":")
    return host, int(port)


def serve(address):
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(endpoint(address))
    sock.listen(16)
    while True:
        conn, _peer = sock.accept()
        conn.close()


def main():
    if sys.argv[1] == "listen":
        threads = [threading.Thread(target=serve, args=(a,), daemon=True) for a in sys.argv[2:]]
        for t in threads:
            t.start()
        threading.Event().wait()
    src, dst = sys.argv[2], sys.argv[3]
    sock = socket.socket()
    sock.settimeout(2)
    sock.bind((src, 0))
    try:
        sock.connect(endpoint(dst))
    except OSError as exc:
        print(f"{src} -> {dst}: not connected ({exc.__class__.__name__})")
        return 1
    print(f"{src} -> {dst}: connected")
    return 0


if __name__ == "__main__":
    sys.exit(main())
