"""tether's response as the urllib3 ``HTTPResponse`` that requests reads as ``response.raw``.

The raw is a real ``urllib3.HTTPResponse`` over a file object that reads tether's streamed
body, so ``iter_content``, ``stream=True``, ``.raw.read(n)``, ``.raw.stream()``, content
decoding and ``release_conn``/``close`` behave exactly as with requests' own adapter.
``raw.connection_info`` is tether's ``ConnectionInfo``.
"""

from __future__ import annotations

import http
import http.client
from collections.abc import Iterator

import requests
import urllib3
from urllib3.exceptions import ProtocolError, ReadTimeoutError

from .. import exceptions as tx
from ..response import Response

__all__ = ["raw_response"]


class _Body:
    """tether's streamed body as the file object a urllib3 ``HTTPResponse`` reads.

    It also stands in for urllib3's ``_original_response`` (``msg`` for the cookie jar,
    ``close``/``isclosed``). tether's errors become urllib3's, which requests then turns into
    its own exactly as with its stock adapter (``ChunkedEncodingError``, ``ConnectionError``).
    """

    def __init__(self, response: Response, url: str) -> None:
        self.response = response
        self.msg = http.client.HTTPMessage()
        for name, value in response.headers.multi_items():
            self.msg[name] = value  # appends: repeated Set-Cookie headers stay apart
        self._url = url
        self._pieces = response.iter_raw()  # urllib3 undoes Content-Encoding itself
        self._piece = b""  # the piece being read, from offset _pos
        self._pos = 0
        self._done = False

    @property
    def closed(self) -> bool:
        return self._done

    def isclosed(self) -> bool:
        return self._done

    def readable(self) -> bool:
        return True

    def read(self, amt: int | None = None) -> bytes:
        if amt is None or amt < 0:
            rest = [self._piece[self._pos :], *self._pull_all()]
            self._piece, self._pos = b"", 0
            return b"".join(rest)
        out = []
        while amt > 0:  # ends: each turn takes bytes, or pulls, or stops at the end
            if self._pos >= len(self._piece):
                if self._done:
                    break
                self._piece, self._pos = self._pull(), 0
                continue
            # An offset into the piece, not a re-sliced buffer: read(1) in a loop stays linear.
            data = self._piece[self._pos : self._pos + amt]
            self._pos += len(data)
            amt -= len(data)
            out.append(data)
        return b"".join(out)

    def read1(self, amt: int | None = None) -> bytes:
        if self._pos >= len(self._piece) and not self._done:
            self._piece, self._pos = self._pull(), 0
        end = len(self._piece) if amt is None or amt < 0 else self._pos + amt
        data = self._piece[self._pos : end]
        self._pos += len(data)
        return data

    def _pull_all(self) -> Iterator[bytes]:
        while not self._done:
            yield self._pull()

    def _pull(self) -> bytes:
        try:
            return next(self._pieces)
        except StopIteration:
            self._done = True  # tether has already given the connection back
            return b""
        except tx.ReadTimeout as exc:
            self.close()
            raise ReadTimeoutError(None, self._url, f"Read timed out. ({exc})") from exc  # type: ignore[arg-type]
        except tx.TetherError as exc:
            self.close()
            raise ProtocolError(f"Connection broken: {exc}", exc) from exc

    def close(self) -> None:
        self._done = True
        self.response.close()


def raw_response(resp: Response, req: requests.PreparedRequest) -> urllib3.HTTPResponse:
    """The urllib3 response (``preload_content=False``) whose body is ``resp``'s stream."""
    url = req.url.decode() if isinstance(req.url, bytes) else str(req.url)
    body = _Body(resp, url)
    headers = urllib3.HTTPHeaderDict()
    for name, value in resp.headers.multi_items():
        headers.add(name, value)
    h2 = resp.http_version == "HTTP/2"
    reason = resp.reason or _phrase(resp.status)
    raw = urllib3.HTTPResponse(
        body=body,  # type: ignore[arg-type]
        headers=headers,
        status=resp.status,
        version=20 if h2 else 11,
        version_string=resp.http_version,
        reason=reason,
        preload_content=False,
        decode_content=False,  # as requests' adapter: iter_content asks for decoding itself
        original_response=body,  # type: ignore[arg-type]
        enforce_content_length=True,
        request_method=req.method,
        request_url=url,
    )
    raw.connection_info = resp.connection_info  # type: ignore[attr-defined]
    raw.tether_response = resp  # type: ignore[attr-defined]
    return raw


def _phrase(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase  # HTTP/2 sends no reason phrase
    except ValueError:
        return ""
