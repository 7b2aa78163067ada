"""TLS over a plain socket through memory BIOs: one read takes every TLS record the kernel has.

Why not ``ssl.SSLSocket``: its ``recv`` returns at most one TLS record per call and, in
timeout mode, polls before every read. An HTTP/2 server answering 16 streams sends many small
records, so a reader pays two system calls per record. Here the socket is read once (up to
64 KiB) into an ``ssl.MemoryBIO`` and ``SSLObject.read`` drains every record that came with
it. OpenSSL never touches the socket, so kernel timeouts (SO_RCVTIMEO/SO_SNDTIMEO) work for TLS
as they do for plain sockets.

``TLSTransport`` is a ``socket.socket`` (as ``SSLSocket`` is): it owns the descriptor, so
``fileno``, ``settimeout``, ``setsockopt``, ``shutdown`` and ``close`` act on the TCP socket,
and ``recv``/``send``/``sendall`` carry plaintext. Errors are a socket's: TimeoutError,
BlockingIOError (non-blocking mode, or a kernel timeout), OSError (``ssl.SSLError`` is one);
``ssl.SSLWantReadError`` never escapes.

TLS in TLS (an https origin through an https proxy's CONNECT tunnel): a ``TLSTransport``
made over another one takes over its descriptor and its TLS connection (``_Outer``), so the
wire carries the proxy's records and those carry the origin's. It is still one socket to the
drivers (``fileno``, ``pending``, timeouts), and its hot path is the plain one's: only the
three functions that move ciphertext between the BIOs and the wire differ.

Threads: HTTP/2 reads on one thread while others write. The SSLObject is used under
``_lock``, which is held only for work in memory, never across a system call; ``_send_lock``
keeps records on the wire in the order they were encrypted.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal, NoReturn, overload

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

__all__ = ["TLSTransport"]

_NOT_DONTWAIT = ~int(socket.MSG_DONTWAIT)  # a plain int: IntFlag arithmetic costs microseconds
_RAW_RECV = 65536  # what one read of the TCP socket asks for
# The TCP socket's own calls (ours carry plaintext, or refuse: they would bypass TLS).
_recv_into, _sendall, _gettimeout = (
    socket.socket.recv_into,
    socket.socket.sendall,
    socket.socket.gettimeout,
)
_RECORD = 16384  # the most plaintext one TLS record carries
_WRITE_STEP = 256 * 1024  # plaintext encrypted per sendall step: bounds the outgoing buffer


class TLSTransport(socket.socket):
    """A client TLS connection over a connected TCP socket, socket-like for the drivers.

    Made by ``handshake_over``; the TCP socket passed in is taken over (detached).
    """

    def __init__(
        self, sock: socket.socket, context: ssl.SSLContext, server_hostname: str | None
    ) -> None:
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        # Before taking the descriptor: a refused hostname raises with nothing to clean up.
        tls = context.wrap_bio(incoming, outgoing, server_hostname=server_hostname)
        # The C object behind SSLObject (read/write/pending), called directly on the hot path:
        # ssl.SSLObject's methods are Python wrappers around it. Falls back to the wrapper.
        self._c: Any = getattr(tls, "_sslobj", tls)
        # Ciphertext between the BIOs and the wire: the BIOs' own methods, unless this runs
        # inside another TLS connection (then that one's records wrap ours).
        self._wire_in: Callable[[Any], object] = incoming.write
        self._wire_eof: Callable[[], None] = incoming.write_eof
        self._wire_out: Callable[[], bytes] = outgoing.read
        self.outer: _Outer | None = None
        if isinstance(sock, TLSTransport):
            self.outer = outer = _Outer(sock, incoming, outgoing)
            self._wire_in, self._wire_eof, self._wire_out = outer.feed, outer.eof, outer.wrap
        timeout = sock.gettimeout()
        super().__init__(sock.family, sock.type, sock.proto, fileno=sock.detach())
        socket.socket.settimeout(self, timeout)
        self._incoming = incoming
        self._outgoing = outgoing
        self._tls = tls
        self._lock = threading.Lock()  # the SSLObject and its BIOs; memory work only
        self._send_lock = threading.Lock()  # order of records on the wire
        self._unsent = b""  # ciphertext a non-blocking send could not hand to the kernel
        self._eof = False
        self._broken: OSError | None = None  # a write failed mid-record: the stream is lost
        # Ciphertext bytes the latest blocking transmit handed to one sendall (0: none yet):
        # whether a request went out in one TCP segment (lifecycle.rules.closed_before_request).
        self.last_transmit = 0

    # -- set-up ---------------------------------------------------------------------------

    def do_handshake(self, timeout: float | None) -> None:
        """Run the handshake, ``timeout`` seconds for all of it (one deadline, not per read).

        Raises ssl.SSLError (certificate or protocol failure), TimeoutError or OSError; the
        socket is left open (the caller closes it). Afterwards the socket's timeout is
        ``timeout`` again.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            try:
                self._tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                self._send_raw(self._wire_out(), deadline)
                self._fill(deadline)
        self._send_raw(self._wire_out(), deadline)  # TLS 1.3: the client's Finished
        socket.socket.settimeout(self, timeout)

    def _remaining(self, deadline: float | None) -> None:
        if deadline is None:
            return
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the TLS handshake timed out")
        socket.socket.settimeout(self, left)

    def _send_raw(self, data: bytes, deadline: float | None) -> None:
        if data:
            self._remaining(deadline)
            socket.socket.sendall(self, data)

    def _fill(self, deadline: float | None) -> None:
        self._remaining(deadline)
        data = socket.socket.recv(self, _RAW_RECV)
        if data:
            self._wire_in(data)
        else:
            self._wire_eof()

    # -- reading --------------------------------------------------------------------------

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        """Up to ``bufsize`` bytes of plaintext: all that is decrypted or arrived together.

        Reads the TCP socket (once, up to 64 KiB) only when nothing is buffered, again while
        what arrived held no application data (a session ticket, half a record). b"" on EOF,
        with or without the peer's close_notify. ``flags`` may be ``socket.MSG_DONTWAIT``.
        """
        if flags & _NOT_DONTWAIT:
            raise ValueError(f"TLSTransport.recv supports only MSG_DONTWAIT, not flags={flags}")
        if self._eof:
            return b""
        c, incoming = self._c, self._incoming
        if c.pending() or incoming.pending:
            data = self._decrypt(bufsize)
            if data is not None:
                return data
        buf, lock, outgoing = _read_buffer(), self._lock, self._outgoing
        wire_in = self._wire_in
        while True:  # each pass consumes what one read of the socket brought
            got = _recv_into(self, buf, _RAW_RECV, flags)
            plain: bytes = b""
            with lock:
                if not got:
                    self._wire_eof()
                else:
                    wire_in(buf[:got])
                    try:
                        plain = c.read(bufsize)
                    except ssl.SSLWantReadError:
                        continue  # half a record, or only a session ticket
                    except ssl.SSLZeroReturnError:
                        self._eof = True
                        return b""
                    except ssl.SSLEOFError:
                        pass  # inside TLS: the proxy's connection ended (_decrypt says so)
                    if plain and not (incoming.pending or c.pending() or outgoing.pending):
                        return plain  # the common case: one pass, everything decrypted
            if not plain:  # EOF, or close_notify: _decrypt tells which
                rest = self._decrypt(bufsize)
                if rest is not None:
                    return rest
                continue
            rest = self._decrypt(bufsize - len(plain))  # more records came with it
            return plain + rest if rest else plain

    def _decrypt(self, bufsize: int) -> bytes | None:
        """What the SSLObject can give now; None if it needs more from the socket."""
        chunks: list[bytes] = []
        want = bufsize
        with self._lock:
            tls, incoming = self._c, self._incoming
            try:
                while want > 0:
                    piece = tls.read(want)
                    if not piece:  # close_notify
                        self._eof = True
                        break
                    chunks.append(piece)
                    want -= len(piece)
                    if not incoming.pending and not tls.pending():
                        break  # all consumed: spare the SSLWantReadError a read would raise
            except ssl.SSLWantReadError:
                pass
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):  # EOF without close_notify too
                self._eof = True
            answer = self._outgoing.pending
        if answer:  # TLS wrote while reading (a KeyUpdate reply)
            self._flush_outgoing()
        if chunks:
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)
        return b"" if self._eof else None

    def pending(self) -> int:
        """Bytes buffered here that a poll of the socket cannot see (decrypted, or received
        and not yet decrypted)."""
        return int(self._c.pending()) + self._incoming.pending

    # -- writing --------------------------------------------------------------------------

    def send(self, data: ReadableBuffer, flags: int = 0) -> int:
        """Send at most one TLS record's worth of ``data``; returns how much was taken.

        If it raises, no complete record reached the peer, so none of ``data`` can have been
        read (a partial record cannot be decrypted); the transport is then unusable for writing.
        In non-blocking mode what the kernel does not take is kept and sent first next time.
        """
        view = memoryview(data).cast("B")[:_RECORD]
        with self._send_lock:
            self._check_writable()
            with self._lock:
                self._c.write(view)
            self._transmit()
        if self._outgoing.pending:
            self._flush_outgoing()
        return len(view)

    def sendall(self, data: ReadableBuffer, flags: int = 0) -> None:
        """Send all of ``data``; raises like ``socket.sendall`` (the stream is then lost)."""
        view = memoryview(data).cast("B")
        with self._send_lock:
            self._check_writable()
            for start in range(0, len(view), _WRITE_STEP):
                with self._lock:
                    self._c.write(view[start : start + _WRITE_STEP])
                self._transmit()
        if self._outgoing.pending:
            self._flush_outgoing()

    def _check_writable(self) -> None:
        if self._broken is not None:
            raise BrokenPipeError(f"an earlier TLS write failed part-way: {self._broken}")

    def _transmit(self) -> None:
        """Hand the encrypted bytes to the kernel (``_send_lock`` held)."""
        with self._lock:
            data = self._wire_out()
        if self._unsent:
            data, self._unsent = self._unsent + data, b""
        if not data:
            return
        if _gettimeout(self) == 0.0:  # non-blocking: keep what does not fit
            try:
                sent = socket.socket.send(self, data)
            except BlockingIOError:
                sent = 0
            self._unsent = data[sent:]
            return
        self.last_transmit = len(data)
        try:
            _sendall(self, data)
        except OSError as exc:  # a timeout too: part of a record may have gone out
            self._broken = exc
            raise

    def _flush_outgoing(self) -> None:
        # Bytes TLS produced while reading go out in order with ours. If a writer holds the
        # send lock it sends them itself: it checks again once it has released the lock.
        while self._outgoing.pending and self._broken is None:
            if not self._send_lock.acquire(blocking=False):
                return
            try:
                self._transmit()
            finally:
                self._send_lock.release()

    # -- what the connection is -----------------------------------------------------------

    def version(self) -> str | None:
        """The negotiated TLS version, e.g. ``"TLSv1.3"``."""
        return self._tls.version()

    def cipher(self) -> tuple[str, str, int] | None:
        """(name, protocol, secret bits) of the negotiated cipher."""
        return self._tls.cipher()

    def selected_alpn_protocol(self) -> str | None:
        """The protocol the server chose by ALPN, or None."""
        return self._tls.selected_alpn_protocol()

    def tls_info(self) -> tuple[str | None, str | None, str | None]:
        """(version, cipher name, ALPN protocol), as connection info reports them."""
        tls = self._tls
        cipher = tls.cipher()
        return tls.version(), cipher[0] if cipher else None, tls.selected_alpn_protocol()

    @overload
    def getpeercert(self, binary_form: Literal[False] = False) -> dict[str, Any] | None: ...
    @overload
    def getpeercert(self, binary_form: Literal[True]) -> bytes | None: ...
    def getpeercert(self, binary_form: bool = False) -> dict[str, Any] | bytes | None:
        """The server's certificate, as ``ssl.SSLSocket.getpeercert`` gives it."""
        return self._tls.getpeercert(binary_form)

    # -- socket calls that would bypass TLS -----------------------------------------------

    def _refuse(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise NotImplementedError("TLSTransport carries plaintext only through recv/send/sendall")

    recv_into = recvfrom = recvfrom_into = recvmsg = recvmsg_into = _refuse
    sendto = sendmsg = sendfile = makefile = dup = _refuse


class _Outer:
    """The TLS connection to a proxy, taken over by the origin's TLS that runs inside it.

    The wire's bytes are the proxy connection's records; their plaintext is the inner
    connection's ciphertext. What arrives is decrypted at once and all of it (so nothing waits
    here that a poll of the socket would miss: only part of a record can stay). Used under
    the inner transport's ``_lock``, as its own BIOs are.
    """

    __slots__ = ("_c", "_in", "_inner_in", "_inner_out", "_out", "closed", "tls")

    def __init__(self, proxy: TLSTransport, inner_in: ssl.MemoryBIO, inner_out: ssl.MemoryBIO):
        if proxy._unsent or proxy.outer is not None:
            raise ValueError("TLS inside TLS needs a flushed proxy connection, one level deep")
        self.tls = proxy._tls  # the proxy's SSLObject: its certificate, its version
        self._c = proxy._c
        self._in, self._out = proxy._incoming, proxy._outgoing
        self._inner_in, self._inner_out = inner_in, inner_out
        self.closed = False  # the proxy's TLS ended (close_notify or EOF): so does ours
        self._drain()  # records already received (a session ticket, say) are the proxy's

    def feed(self, data: Any) -> None:
        self._in.write(data)
        self._drain()

    def eof(self) -> None:
        self._in.write_eof()
        self._drain()
        self._close()

    def _drain(self) -> None:
        c, inner = self._c, self._inner_in
        while not self.closed:
            try:
                piece = c.read(_RAW_RECV)
            except ssl.SSLWantReadError:
                return
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                piece = b""
            if not piece:
                self._close()
                return
            inner.write(piece)

    def _close(self) -> None:
        if not self.closed:
            self.closed = True
            self._inner_in.write_eof()

    def wrap(self) -> bytes:
        """The wire bytes for what the inner connection has to send (and any of our own)."""
        data = self._inner_out.read()
        if data:
            self._c.write(data)
        return self._out.read()


def handshake_over(
    sock: socket.socket, context: ssl.SSLContext, server_hostname: str, timeout: float | None
) -> TLSTransport:
    """TLS on a connected TCP socket, handshake done; on failure the socket is closed.

    ``sock`` may be a ``TLSTransport`` (an https proxy's tunnel): the new one runs inside it.

    Raises like the handshake (ssl.SSLError, TimeoutError, OSError, ValueError).
    """
    try:
        transport = TLSTransport(sock, context, server_hostname)
    except BaseException:
        sock.close()
        raise
    try:
        transport.do_handshake(timeout)
    except BaseException:
        transport.close()
        raise
    return transport


_buffers = threading.local()


def _read_buffer() -> memoryview:
    """This thread's buffer for reading TCP sockets (64 KiB): one per thread, not one per
    connection, so an idle pooled connection holds none, and a read allocates no 64 KiB
    bytes object only to shrink it. The ciphertext is fed to the BIO before the next read."""
    buf: memoryview | None = getattr(_buffers, "buf", None)
    if buf is None:
        buf = _buffers.buf = memoryview(bytearray(_RAW_RECV))
    return buf
