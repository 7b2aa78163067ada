"""A misbehaving CONNECT proxy on loopback, for the bad-input tests.

``FakeConnectProxy(mode)`` accepts connections on a free port, reads a CONNECT head and then:

- ``"garbage"``: answers ``200`` and then bytes that are not TLS;
- ``"relay"``: answers ``200`` and relays to the requested origin, but closes the tunnel
  once ``cut_after`` bytes went from the origin to the client (None: never);
- ``"407"``: answers ``407`` with a Proxy-Authenticate header, whatever was sent;
- ``"silent"``: closes without answering;
- ``"trailing"``: answers ``200`` with bytes after the reply in the same write.

With ``tls`` (a server SSLContext) it is an https:// proxy: TLS first, the CONNECT inside.

``heads`` keeps every CONNECT head received (to check what the client sent). Threads are
joined at ``stop()``; every socket is closed there at the latest.
"""

from __future__ import annotations

import select
import socket
import ssl
import threading
from typing import Self


class FakeConnectProxy:
    def __init__(
        self, mode: str, cut_after: int | None = None, tls: ssl.SSLContext | None = None
    ) -> None:
        self.mode = mode
        self.tls = tls
        self.cut_after = cut_after
        self.heads: list[bytes] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._threads: list[threading.Thread] = []
        self._sockets: list[socket.socket] = []
        self._stopped = False
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def start(self) -> Self:
        self._spawn(self._accept)
        return self

    def _spawn(self, target: object, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)  # type: ignore[arg-type]
        self._threads.append(thread)
        thread.start()

    def _track(self, sock: socket.socket) -> socket.socket:
        with self._lock:
            self._sockets.append(sock)
        return sock

    def _accept(self) -> None:
        while not self._stopped:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            self._spawn(self._serve, self._track(client))

    def _serve(self, client: socket.socket) -> None:
        try:
            if self.tls is not None:
                client.settimeout(5)
                client = self._track(self.tls.wrap_socket(client, server_side=True))
            head = b""
            while b"\r\n\r\n" not in head and len(head) < 65536:
                data = client.recv(4096)
                if not data:
                    return
                head += data
            self.heads.append(head)
            if self.mode == "silent":
                return
            if self.mode == "407":
                client.sendall(
                    b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                    b'Proxy-Authenticate: Basic realm="fake"\r\nContent-Length: 0\r\n\r\n'
                )
                return
            if self.mode == "trailing":
                client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\nhello")
                client.recv(4096)  # until the client gives up
                return
            client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            if self.mode == "garbage":
                client.sendall(b"this is not a TLS record\r\n" * 8)
                client.recv(4096)  # until the client gives up
                return
            host, _, port = head.split(b" ", 2)[1].decode().rpartition(":")
            upstream = self._track(socket.create_connection((host.strip("[]"), int(port))))
            if isinstance(client, ssl.SSLSocket):  # one thread: an SSLSocket is not shared
                self._relay_tls(client, upstream, self.cut_after)
                return
            self._spawn(self._pipe, client, upstream, None)
            self._pipe(upstream, client, self.cut_after)
        except OSError:
            pass
        finally:
            client.close()

    def _pipe(self, src: socket.socket, dst: socket.socket, budget: int | None) -> None:
        sent = 0
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if budget is not None and sent + len(data) > budget:
                    dst.sendall(data[: budget - sent])
                    break  # cut the tunnel mid-stream
                dst.sendall(data)
                sent += len(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def _relay_tls(
        self, client: ssl.SSLSocket, upstream: socket.socket, budget: int | None
    ) -> None:
        """Relay both ways on this thread; close the client (no close_notify) once ``budget``
        bytes went from the origin to it."""
        sent = 0
        client.settimeout(0.2)
        upstream.settimeout(0.2)
        try:
            while not self._stopped:
                ready, _, _ = select.select([client, upstream], [], [], 0.2)
                if client in ready or client.pending():
                    data = client.recv(65536)
                    if not data:
                        return
                    upstream.sendall(data)
                if upstream in ready:
                    data = upstream.recv(65536)
                    if not data:
                        return
                    if budget is not None and sent + len(data) > budget:
                        client.sendall(data[: budget - sent])
                        return  # cut the tunnel mid-stream: the finally closes it
                    client.sendall(data)
                    sent += len(data)
        except OSError:
            pass
        finally:
            upstream.close()

    def stop(self) -> None:
        self._stopped = True
        try:
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the accept thread (close does not)
        except OSError:
            pass
        self._listener.close()
        with self._lock:
            for sock in self._sockets:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        for thread in self._threads:
            thread.join(5)
        with self._lock:
            for sock in self._sockets:
                sock.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
