"""Sans-I/O protocol layer: bytes in, events out. No socket, no clock, no ``await``.

HTTP/1.1 and HTTP/2, and the proxy handshakes (``proxy``: CONNECT; ``socks``: SOCKS4/5)."""
