"""Turning what a user passes (form fields, JSON, text, bytes, an iterator) into a request body."""

from __future__ import annotations

import json as jsonlib
import mimetypes
import secrets
from collections.abc import AsyncIterable, Iterable, Mapping
from typing import Any
from urllib.parse import urlencode

from .models import URL, HeaderInput, Headers, Origin, Request, check_target

__all__ = [
    "FORM_METHODS",
    "PoolRequests",
    "body_headers",
    "encode_body",
    "encode_multipart",
]

# Methods whose ``fields`` go into a form-encoded body rather than the query (urllib3's rule).
FORM_METHODS = frozenset({"POST", "PUT", "PATCH"})

BodyTypes = bytes | str | Iterable[bytes] | AsyncIterable[bytes] | None
FormTypes = Mapping[str, Any] | Iterable[tuple[str, Any]] | None


def body_headers(base: Headers, extra: HeaderInput, content_type: str | None) -> Headers:
    """``base`` with the caller's ``extra`` headers, plus the body's Content-Type unless set.

    Returns ``base`` itself when nothing is added (a Request shares it until asked).
    """
    merged = base.merged(extra) if extra else base
    if content_type is not None and "content-type" not in merged:
        merged = merged.merged({"Content-Type": content_type})
    return merged


def encode_body(
    content: BodyTypes = None, form: FormTypes = None, json: Any = None
) -> tuple[BodyTypes, str | None]:
    """The body to send and the Content-Type it implies (None: leave Content-Type alone).

    ``content`` is passed through (``Request`` encodes a str as UTF-8 and sends an iterable of
    bytes chunked); ``form`` is URL-encoded, or multipart/form-data when a value is a file
    tuple (see ``encode_multipart``); ``json`` is serialised compactly.
    """
    if form is None and json is None:
        return content, None  # Request turns str and bytearray into bytes
    if content is not None or (form is not None and json is not None):
        raise TypeError("pass only one of a body, form fields or json")
    if json is not None:
        try:
            text = jsonlib.dumps(json, separators=(",", ":"), allow_nan=False)
        except ValueError as exc:  # NaN and Infinity are not JSON: most servers refuse them
            raise ValueError(f"json= body cannot be sent as JSON (RFC 8259): {exc}") from None
        return text.encode(), "application/json"
    assert form is not None
    pairs = list(form.items()) if isinstance(form, Mapping) else list(form)
    if any(isinstance(value, tuple) for _, value in pairs):
        return encode_multipart(pairs)
    return urlencode(pairs, doseq=True).encode("ascii"), "application/x-www-form-urlencoded"


def encode_multipart(
    fields: Iterable[tuple[str, Any]], boundary: str | None = None
) -> tuple[bytes, str]:
    """A multipart/form-data body and its Content-Type (urllib3's rule for ``fields``).

    A value ``(filename, data)`` or ``(filename, data, content_type)`` is a file (its type
    guessed from the filename when not given); any other value is a plain field (str as
    UTF-8, bytes as is, anything else as ``str()``). Quotes, CR and LF in names and filenames
    are percent-encoded, as HTML5 forms send them.
    """
    boundary = boundary or secrets.token_hex(16)
    out: list[bytes] = []
    for name, value in fields:
        disposition = f'form-data; name="{_quoted(name)}"'
        part_type = ""
        if isinstance(value, tuple):
            filename, value, ctype = _file_field(name, value)
            disposition += f'; filename="{_quoted(filename)}"'
            part_type = f"Content-Type: {ctype}\r\n"
        head = f"--{boundary}\r\nContent-Disposition: {disposition}\r\n{part_type}\r\n"
        out += (head.encode("utf-8"), _field_bytes(value), b"\r\n")
    out.append(f"--{boundary}--\r\n".encode("ascii"))
    return b"".join(out), f"multipart/form-data; boundary={boundary}"


def _file_field(name: str, value: tuple[Any, ...]) -> tuple[str, Any, str]:
    if len(value) == 2:
        filename, data = value
        guessed = mimetypes.guess_type(str(filename))[0]
        return str(filename), data, guessed or "application/octet-stream"
    if len(value) == 3:
        ctype = str(value[2])
        if "\r" in ctype or "\n" in ctype:
            raise ValueError(f"file field {name!r} has CR or LF in its content type: {ctype!r}")
        return str(value[0]), value[1], ctype
    raise TypeError(
        f"file field {name!r} must be (filename, data) or (filename, data, content_type), "
        f"not a {len(value)}-tuple"
    )


def _field_bytes(value: Any) -> bytes:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    return str(value).encode("utf-8")


def _quoted(text: object) -> str:
    return str(text).replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")


class PoolRequests:
    """urllib3's ``pool.request(method, path, fields=...)``, built the same for both bodies.

    ``fields`` go in the query string for GET, HEAD, DELETE and OPTIONS and into the body
    otherwise (form-encoded, or multipart/form-data when a value is a file tuple); parsed
    targets are cached, since pools are asked for the same few paths over and over.
    """

    def __init__(self, origin: Origin, headers: Headers) -> None:
        self.origin = origin
        self.headers = headers
        self._urls: dict[str, URL] = {}

    def build(
        self,
        method: str,
        path: str,
        fields: Mapping[str, Any] | Iterable[tuple[str, Any]] | None,
        headers: HeaderInput,
        body: BodyTypes,
        json: Any,
    ) -> Request:
        url = self._urls.get(path)
        if url is None:
            url = URL.from_parts(self.origin, check_target(path))
            if len(self._urls) >= 256:
                self._urls.clear()
            self._urls[path] = url
        form = None
        if fields is not None:
            if method.upper() in FORM_METHODS:
                form = fields
            else:
                url = url.with_query(fields)
        content, content_type = encode_body(body, form, json)
        merged = body_headers(self.headers, headers, content_type)
        return Request(method, url, headers=merged, body=content)
