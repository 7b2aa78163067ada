"""Turning a session call's arguments into a `Request`: written once for both sessions.

`Session.request` and `AsyncSession.request` take the same arguments (requests' API) and
differ only in how they wait; everything about what is sent lives here, as pure functions:
the URL with its query, the body (bytes, text, an iterator, form fields or JSON), the merged
headers, and the per-request TLS override.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Iterable, Mapping
from typing import Any

from ..decoding import ACCEPT_ENCODING
from ..io.tls import CertTypes, TLSConfig, VerifyTypes
from ..models import URL, HeaderInput, Headers, QueryParams, Request, parse_url
from ..requestbody import BodyTypes, FilesTypes, FormTypes, body_headers, encode_body

__all__ = ["USER_AGENT", "build_request", "default_headers", "tls_override"]

USER_AGENT = "tether/0.1"


def default_headers(headers: HeaderInput) -> Headers:
    """A session's headers: tether's defaults, overridden by the user's."""
    base = Headers({"User-Agent": USER_AGENT, "Accept-Encoding": ACCEPT_ENCODING, "Accept": "*/*"})
    return base.merged(headers) if headers else base


def build_request(
    method: str,
    url: str | URL,
    session_headers: Headers,
    *,
    params: QueryParams = None,
    data: bytes | str | FormTypes | Iterable[bytes] | AsyncIterable[bytes] = None,
    json: Any = None,
    headers: HeaderInput = None,
    files: FilesTypes = None,
) -> Request:
    """The validated request a session call describes (see ``Session.request``)."""
    parsed = parse_url(url)
    if params:
        parsed = parsed.with_query(params)
    content: BodyTypes = None
    ctype = None
    if data is not None or json is not None or files is not None:  # most requests have none
        if _is_form(data):
            content, ctype = encode_body(form=data, json=json, files=files)  # type: ignore[arg-type]
        else:
            content, ctype = encode_body(data, json=json, files=files)  # type: ignore[arg-type]
    merged = body_headers(session_headers, headers, ctype, content)
    return Request(method, parsed, headers=merged, body=content)


def tls_override(
    default: TLSConfig, verify: VerifyTypes | None, cert: CertTypes
) -> TLSConfig | None:
    """The TLS settings of a request that overrides the session's (None: no override)."""
    if verify is None and cert is None:
        return None
    return TLSConfig(
        default.verify if verify is None else verify,
        default.cert if cert is None else cert,
    )


def _is_form(data: object) -> bool:
    # A mapping or a list of pairs is form fields (requests' rule); bytes, str or an iterator
    # of bytes is the body itself.
    if isinstance(data, Mapping):
        return True
    return isinstance(data, (list, tuple)) and all(isinstance(p, tuple) for p in data)
