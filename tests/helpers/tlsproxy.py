"""A local HTTPS proxy that plays every model server, for ``vcam models fetch`` in a subprocess.

vcam downloads only over HTTPS from fixed URLs, so there is no URL to point at a test server.
It does honour the two standard seams every ``urllib`` program has: ``HTTPS_PROXY`` (the
request goes through ``CONNECT host:443`` to this proxy) and ``SSL_CERT_FILE`` (the CA it
trusts). The proxy answers the ``CONNECT`` itself and speaks TLS with a certificate for the
model hosts signed by a throw-away CA, then serves ``body`` slowly, so a signal can land
while the connection is being set up (``hold=True``: the ``CONNECT`` is never answered) or
in the middle of the download. Nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import socket
import ssl
import subprocess
import threading
import time
from pathlib import Path

__all__ = ["HOSTS", "SlowProxy", "make_ca"]

HOSTS = ("github.com", "objects.githubusercontent.com", "pypi.org", "files.pythonhosted.org")


def make_ca(folder: Path) -> tuple[Path, Path, Path]:
    """(CA certificate, server certificate, server key) for :data:`HOSTS`, made with openssl."""
    ca_key, ca, key, csr, cert = (folder / n for n in ("ca.key", "ca.pem", "server.key", "server.csr", "server.pem"))
    ext = folder / "server.ext"
    ext.write_text(
        "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid,issuer\n"
        "subjectAltName=" + ",".join(f"DNS:{h}" for h in HOSTS) + "\n"
    )

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(ca_key), "-out", str(ca), "-days", "2",
            "-subj", "/CN=vcam test CA", "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr), "-subj", f"/CN={HOSTS[0]}")
    openssl("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key), "-CAcreateserial",
            "-out", str(cert), "-days", "2", "-extfile", str(ext))
    return ca, cert, key


class SlowProxy:
    """``CONNECT`` proxy on 127.0.0.1 that serves ``body`` for every request, ``chunk`` bytes
    every ``pause`` seconds. ``connected`` is set at the first ``CONNECT``; ``sent`` counts
    body bytes written so far."""

    def __init__(self, cert: Path, key: Path, body: bytes, *, hold: bool = False,
                 chunk: int = 16384, pause: float = 0.05) -> None:
        self._tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._tls.load_cert_chain(str(cert), str(key))
        self._body, self._hold, self._chunk, self._pause = body, hold, chunk, pause
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        self.connected = threading.Event()
        self.sent = 0
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._conns: list[socket.socket] = []
        t = threading.Thread(target=self._accept, name="test-proxy", daemon=True)
        t.start()
        self._threads.append(t)

    def __enter__(self) -> SlowProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._stop.set()
        self._sock.close()
        for c in self._conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            c.close()
        for t in self._threads:
            t.join(10)

    def _accept(self) -> None:
        self._sock.settimeout(0.2)  # close() does not wake a blocked accept(): look at _stop now and then
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._conns.append(conn)
            t = threading.Thread(target=self._serve, args=(conn,), name="test-proxy-conn", daemon=True)
            t.start()
            self._threads.append(t)

    @staticmethod
    def _head(conn: socket.socket | ssl.SSLSocket) -> bytes:
        data = b""
        while b"\r\n\r\n" not in data:
            block = conn.recv(4096)
            if not block:
                raise ConnectionError("closed before the end of the request head")
            data += block
        return data

    def _serve(self, conn: socket.socket) -> None:
        tls: ssl.SSLSocket | None = None
        try:
            head = self._head(conn)
            if not head.startswith(b"CONNECT "):
                conn.sendall(b"HTTP/1.1 405 Only CONNECT\r\nContent-Length: 0\r\n\r\n")
                return
            self.connected.set()
            if self._hold:  # never answer: the client waits in its connect step
                self._stop.wait()
                return
            conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            tls = self._tls.wrap_socket(conn, server_side=True)
            self._head(tls)
            tls.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                + f"Content-Length: {len(self._body)}\r\nConnection: close\r\n\r\n".encode()
            )
            for i in range(0, len(self._body), self._chunk):
                if self._stop.is_set():
                    return
                tls.sendall(self._body[i : i + self._chunk])
                self.sent += min(self._chunk, len(self._body) - i)
                time.sleep(self._pause)
        except (OSError, ConnectionError):
            pass  # the client went away (it was stopped): that is the point
        finally:
            if tls is not None:
                tls.close()
            conn.close()
