"""Turning what a user passes (form fields, files, JSON, text, bytes, an iterator) into a body.

Files are streamed: a ``files=`` part that is an open file or a path is read in blocks while
the request is written, never into memory, and the body's Content-Length is known (and sent)
whenever every part's size is. Async iterables are bodies for the asyncio API (`AsyncBody`).
"""

from __future__ import annotations

import errno
import io
import json as jsonlib
import mimetypes
import os
import secrets
from collections.abc import AsyncIterable, Iterable, Iterator, Mapping
from pathlib import PurePath
from typing import Any
from urllib.parse import urlencode

from .models import (
    FILE_BLOCK,
    URL,
    AsyncBody,
    HeaderInput,
    Headers,
    Origin,
    Request,
    _remaining_size,
    check_target,
)

__all__ = [
    "FORM_METHODS",
    "MultipartStream",
    "PoolRequests",
    "body_headers",
    "encode_body",
    "encode_multipart",
]

# Methods whose ``fields`` go into a form-encoded body rather than the query (urllib3's rule).
FORM_METHODS = frozenset({"POST", "PUT", "PATCH"})

BodyTypes = bytes | str | Iterable[bytes] | AsyncIterable[bytes] | None
FormTypes = Mapping[str, Any] | Iterable[tuple[str, Any]] | None
FilesTypes = Mapping[str, Any] | Iterable[tuple[str, Any]] | None


def body_headers(
    base: Headers, extra: HeaderInput, content_type: str | None, body: object = None
) -> Headers:
    """``base`` with the caller's ``extra`` headers, plus the body's Content-Type unless set
    (and Content-Length for a streamed multipart body whose size is known).

    Returns ``base`` itself when nothing is added (a Request shares it until asked).
    """
    merged = base.merged(extra) if extra else base
    if content_type is not None and "content-type" not in merged:
        merged = merged.merged({"Content-Type": content_type})
    length = body.length if isinstance(body, MultipartStream) else None
    if length is not None and "content-length" not in merged and "transfer-encoding" not in merged:
        merged = merged.merged({"Content-Length": str(length)})
    return merged


def encode_body(
    content: BodyTypes = None, form: FormTypes = None, json: Any = None, files: FilesTypes = None
) -> tuple[BodyTypes, str | None]:
    """The body to send and the Content-Type it implies (None: leave Content-Type alone).

    ``content`` is passed through (``Request`` encodes a str as UTF-8 and sends an iterable of
    bytes chunked; an async iterable becomes an `AsyncBody`); ``form`` is URL-encoded (fields
    whose value is None are left out), or multipart/form-data with ``files`` or when a value
    is a file tuple (see ``encode_multipart``); ``json`` is serialised compactly, non-ASCII
    as UTF-8.
    """
    if files is not None:
        if content is not None or json is not None:
            raise TypeError("files= goes with form fields in data= (a dict or pairs), not a body")
        return encode_multipart([*_pairs(form), *_pairs(files, file_field=True)])
    if form is None and json is None:
        if isinstance(content, AsyncIterable) and not isinstance(content, AsyncBody):
            return AsyncBody(content), None
        return content, None  # Request turns str and bytearray into bytes
    if content is not None or (form is not None and json is not None):
        raise TypeError("pass only one of a body, form fields or json")
    if json is not None:
        return _json_bytes(json), "application/json"
    pairs = _pairs(form)
    if any(isinstance(value, tuple) for _, value in pairs):
        return encode_multipart(pairs)
    return urlencode(pairs, doseq=True).encode("ascii"), "application/x-www-form-urlencoded"


def _json_bytes(value: Any) -> bytes:
    try:
        # Non-ASCII as UTF-8, not \u escapes (JSON is UTF-8 on the wire, RFC 8259 §8.1).
        text = jsonlib.dumps(value, separators=(",", ":"), allow_nan=False, ensure_ascii=False)
    except ValueError as exc:  # NaN and Infinity are not JSON: most servers refuse them
        raise ValueError(f"json= body cannot be sent as JSON (RFC 8259): {exc}") from None
    try:
        return text.encode()
    except UnicodeEncodeError:  # a lone surrogate has no UTF-8 form: escaped, it is valid JSON
        return jsonlib.dumps(value, separators=(",", ":"), allow_nan=False).encode()


def _pairs(fields: FormTypes, file_field: bool = False) -> list[tuple[str, Any]]:
    """(name, value) pairs; None values dropped, lists of values expanded (requests' rules)."""
    if fields is None:
        return []
    if isinstance(fields, (str, bytes)):
        raise TypeError("form fields and files are a dict or (name, value) pairs, not a str")
    pairs = fields.items() if isinstance(fields, Mapping) else fields
    out: list[tuple[str, Any]] = []
    for name, value in pairs:
        if value is None:
            continue
        values = value if isinstance(value, list) else [value]
        for one in values:
            if file_field and one is not None and not isinstance(one, tuple):
                one = (_default_filename(name, one), one)
            if one is not None:
                out.append((name, one))
    return out


def _default_filename(name: str, value: Any) -> str:
    # requests' rule: the file's own name when it has one, else the field's name.
    path = value if isinstance(value, PurePath) else getattr(value, "name", None)
    if isinstance(path, (str, PurePath)) and str(path) and not str(path).startswith("<"):
        return os.path.basename(str(path))
    return name


class MultipartStream:
    """A multipart/form-data body sent part by part, files read in blocks as they go out.

    ``length`` is the body's size when every part's is known (bytes, a regular file, a path,
    a seekable file object), else None (sent chunked). Paths are opened when the body is sent
    and closed after their part; file objects are read from their current position.
    """

    def __init__(self, pieces: list[bytes | _FilePart]) -> None:
        self._pieces = pieces
        sizes = [len(p) if isinstance(p, bytes) else p.size for p in pieces]
        self.length: int | None = None if None in sizes else sum(s or 0 for s in sizes)
        # Paths are opened anew each time: such a body can be sent again (a retry); a file
        # object is read once.
        self.replayable = all(
            isinstance(p, bytes) or isinstance(p.source, PurePath) for p in pieces
        )

    def __iter__(self) -> Iterator[bytes]:
        for piece in self._pieces:
            if isinstance(piece, bytes):
                yield piece
            else:
                yield from piece.blocks()


class _FilePart:
    """One file's content: a path (opened when sent) or an open file object."""

    def __init__(self, field: str, source: Any) -> None:
        self.source = source
        self.size: int | None
        if isinstance(source, PurePath):
            try:
                info = os.stat(source)
            except FileNotFoundError:
                raise FileNotFoundError(
                    errno.ENOENT, f"files= field {field!r}: no such file", str(source)
                ) from None
            if not os.path.isfile(source):
                raise IsADirectoryError(
                    errno.EISDIR, f"files= field {field!r}: not a regular file", str(source)
                )
            self.size = info.st_size
        elif isinstance(source, io.TextIOBase):
            self.size = None  # its UTF-8 size is known only once read
        else:
            self.size = _remaining_size(source)

    def blocks(self) -> Iterator[bytes]:
        if isinstance(self.source, PurePath):
            with open(self.source, "rb") as file:
                yield from _read(file)
        else:
            yield from _read(self.source)


def _read(file: Any) -> Iterator[bytes]:
    text = isinstance(file, io.TextIOBase)
    while block := file.read(FILE_BLOCK):
        yield block.encode("utf-8") if text else bytes(block)


def encode_multipart(
    fields: Iterable[tuple[str, Any]], boundary: str | None = None
) -> tuple[bytes | MultipartStream, str]:
    """A multipart/form-data body and its Content-Type (urllib3's rule for ``fields``).

    A value ``(filename, data)`` or ``(filename, data, content_type)`` is a file (its type
    guessed from the filename when not given); ``data`` is bytes, str, an open file or a
    path (``pathlib.Path``); any other value is a plain field (str as UTF-8, bytes as is,
    anything else as ``str()``). Quotes, CR and LF in names and filenames are percent-encoded,
    as HTML5 forms send them. Bytes only: one bytes body; with files: a `MultipartStream`.
    """
    boundary = boundary or secrets.token_hex(16)
    pieces: list[bytes | _FilePart] = []
    head = b""
    for name, value in fields:
        disposition = f'form-data; name="{_quoted(name)}"'
        part_type = ""
        if isinstance(value, tuple):
            filename, value, ctype = _file_field(name, value)
            disposition += f'; filename="{_quoted(filename)}"'
            part_type = f"Content-Type: {ctype}\r\n"
        head += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n{part_type}\r\n".encode()
        if isinstance(value, PurePath) or hasattr(value, "read"):
            pieces += (head, _FilePart(name, value))
            head = b"\r\n"
        else:
            head += _field_bytes(value) + b"\r\n"
    pieces.append(head + f"--{boundary}--\r\n".encode("ascii"))
    ctype = f"multipart/form-data; boundary={boundary}"
    if len(pieces) == 1:
        return pieces[0], ctype  # type: ignore[return-value]  # no file part: plain bytes
    return MultipartStream(pieces), ctype


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
        merged = body_headers(self.headers, headers, content_type, content)
        return Request(method, url, headers=merged, body=content)
