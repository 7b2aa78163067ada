"""SOCKS5 and SOCKS4(a) handshakes, sans-I/O, on ``socksio`` (see ``protocol.proxy``).

socksio encodes requests and parses replies but wants one whole message per call; this module
frames the replies (their length follows from the first bytes) so a body can take exactly a
handshake's bytes off the socket and leave what follows to TLS or HTTP.
"""

from __future__ import annotations

import ipaddress

from socksio import ProtocolError as SocksProtocolError
from socksio import socks4, socks5

from ..models import Origin
from .proxy import Handshake, Proxy

__all__ = ["Socks4Handshake", "Socks5Handshake"]


class Socks5Handshake(Handshake):
    """SOCKS5 (RFC 1928) with no authentication or username/password (RFC 1929).

    ``address`` is what the proxy is asked to connect to: the origin's name for socks5h, an IP
    address resolved here for socks5.
    """

    def __init__(self, proxy: Proxy, origin: Origin, address: str) -> None:
        super().__init__(proxy, origin)
        self._conn = socks5.SOCKS5Connection()
        self._address = address.strip("[]")
        methods = [socks5.SOCKS5AuthMethod.NO_AUTH_REQUIRED]
        if proxy.username is not None:
            methods.insert(0, socks5.SOCKS5AuthMethod.USERNAME_PASSWORD)
        self._conn.send(socks5.SOCKS5AuthMethodsRequest(methods))
        self._out = self._conn.data_to_send()

    def feed(self, available: bytes) -> int:
        seen = len(self._buf)
        buf = self._buf + available
        size = self._message_size(buf)
        if size is None or len(buf) < size:
            self._buf = buf
            return len(available)
        self._buf = b""
        try:
            self._receive(buf[:size])
        except (SocksProtocolError, ValueError) as exc:
            raise self.error(f"not a SOCKS5 reply: {exc}") from None
        return size - seen

    def _message_size(self, buf: bytes) -> int | None:
        state = self._conn.state
        if state != socks5.SOCKS5State.CLIENT_AUTHENTICATED:
            return 2  # method choice, or username/password verdict
        if len(buf) < 5:
            return None
        atype = buf[3]
        if atype == 1:
            return 10
        if atype == 4:
            return 22
        if atype == 3:
            return 7 + buf[4]
        raise self.error(f"SOCKS5 reply with unknown address type {atype}")

    def _receive(self, message: bytes) -> None:
        reply = self._conn.receive_data(message)
        if isinstance(reply, socks5.SOCKS5AuthReply):
            method = reply.method
            if method == socks5.SOCKS5AuthMethod.USERNAME_PASSWORD:
                if self.proxy.username is None:
                    raise self.error("the SOCKS5 proxy requires a username and password")
                self._conn.send(
                    socks5.SOCKS5UsernamePasswordRequest(
                        self.proxy.username.encode(), (self.proxy.password or "").encode()
                    )
                )
            elif method == socks5.SOCKS5AuthMethod.NO_AUTH_REQUIRED:
                self._command()
            elif self.proxy.username is None:
                raise self.error("the SOCKS5 proxy requires a username and password")
            else:
                raise self.error("the SOCKS5 proxy accepts none of our authentication methods")
        elif isinstance(reply, socks5.SOCKS5UsernamePasswordReply):
            if not reply.success:
                raise self.error("the SOCKS5 proxy refused the username and password")
            self._command()
        else:
            if reply.reply_code != socks5.SOCKS5ReplyCode.SUCCEEDED:
                code = reply.reply_code
                raise self.error(f"SOCKS5 reply {code.name.lower()}", code[0])
            self.done = True
        self._out += self._conn.data_to_send()

    def _command(self) -> None:
        self._conn.send(
            socks5.SOCKS5CommandRequest.from_address(
                socks5.SOCKS5Command.CONNECT, (self._address, self.origin.port)
            )
        )


class Socks4Handshake(Handshake):
    """SOCKS4 (an IPv4 address resolved here) or SOCKS4a (the proxy resolves the name).

    The request is packed here: socksio refuses an empty user id, which SOCKS4 allows (and
    is what a proxy URL without a user means). The reply is parsed by socksio.
    """

    def __init__(self, proxy: Proxy, origin: Origin, address: str) -> None:
        super().__init__(proxy, origin)
        self._conn = socks4.SOCKS4Connection(user_id=b"")
        user = (proxy.username or "").encode() + b"\0"
        port = origin.port.to_bytes(2, "big")
        if proxy.scheme == "socks4a" and not _is_ipv4(address):  # 0.0.0.1: a name follows
            name = address.strip("[]").encode("idna") + b"\0"
            self._out = b"\x04\x01" + port + b"\0\0\0\x01" + user + name
        else:
            self._out = b"\x04\x01" + port + ipaddress.IPv4Address(address).packed + user

    def feed(self, available: bytes) -> int:
        seen = len(self._buf)
        buf = self._buf + available
        if len(buf) < 8:
            self._buf = buf
            return len(available)
        try:
            reply = self._conn.receive_data(buf[:8])
        except (SocksProtocolError, ValueError) as exc:
            raise self.error(f"not a SOCKS4 reply: {exc}") from None
        if reply.reply_code != socks4.SOCKS4ReplyCode.REQUEST_GRANTED:
            raise self.error(f"SOCKS4 reply {reply.reply_code.name.lower()}", reply.reply_code[0])
        self.done = True
        return 8 - seen


def _is_ipv4(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).version == 4
    except ValueError:
        return False
