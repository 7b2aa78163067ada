"""Undoing Content-Encoding (gzip, deflate, br, zstd) under a decompression-bomb guard.

Pure: bytes in, bytes out, no I/O. `Decoder` takes the body as it arrives and hands back
decoded pieces of at most ``PIECE`` bytes, whatever one input piece expands to, so memory
stays bounded while streaming; `DecodeLimits` stops a body that decodes to too much, or
expands too much for its size, with `DecompressionLimitError`. Damaged data raises
`DecodingError`: never a silently short or garbled body.

``br`` needs ``brotli`` or ``brotlicffi`` (``tether[brotli]``), ``zstd`` ``backports.zstd``
on Python < 3.14 (``tether[zstd]``); `ACCEPT_ENCODING` names exactly what is installed.
"""

from __future__ import annotations

import codecs
import importlib
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, AnyStr, Generic, Protocol

from .exceptions import DecodingError, DecompressionLimitError

__all__ = [
    "ACCEPT_ENCODING",
    "PIECE",
    "DecodeLimits",
    "Decoder",
    "LineSplitter",
    "Rechunker",
    "TextDecoder",
    "available_encodings",
    "charset_of",
    "check_chunk_size",
    "codings_of",
    "decode_all",
    "decode_text",
    "detect_charset",
    "known_codec",
]

PIECE = 64 * 1024  # about the most one decode step returns: memory's bound while streaming
_MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class DecodeLimits:
    """How far a compressed body may expand (``Session(decode_limits=...)``).

    ``max_size``: decoded bytes, at most (None: no limit). ``max_ratio``: decoded bytes per
    received byte, checked once ``ratio_after`` bytes are decoded, so a small, very
    repetitive page is fine (None: no limit). The defaults are past any ordinary page (web
    pages and JSON compress 3-20 times) and stop a gzip bomb (~1000 times) after 16 MiB; a
    large streamed download may need ``max_size=None``.
    """

    max_size: int | None = 1024 * _MIB
    max_ratio: float | None = 200.0
    ratio_after: int = 16 * _MIB

    def __post_init__(self) -> None:
        for name in ("max_size", "max_ratio"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not value > 0):
                raise ValueError(f"DecodeLimits.{name} must be positive or None, not {value!r}")
        if isinstance(self.ratio_after, bool) or not self.ratio_after >= 0:
            raise ValueError(f"DecodeLimits.ratio_after must be >= 0, not {self.ratio_after!r}")


def _optional(*names: str) -> Any:
    for name in names:
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    return None


def _brotli_module() -> Any:
    for name in ("brotli", "brotlicffi"):
        module = _optional(name)
        try:  # only a version that can bound its output (1.2+) is safe to use
            module.Decompressor().process(b"", output_buffer_limit=1)
        except Exception:
            continue
        return module
    return None


_brotli = _brotli_module()
_zstd = _optional("compression.zstd", "backports.zstd")
_ZSTD_WINDOW_LOG = 23  # 8 MiB: what RFC 9659 lets a zstd Content-Encoding use


def available_encodings() -> tuple[str, ...]:
    """The content codings this installation decodes, in order of preference."""
    found = ["gzip", "deflate"]
    if _brotli is not None:
        found.append("br")
    if _zstd is not None:
        found.append("zstd")
    return tuple(found)


ACCEPT_ENCODING = ", ".join(available_encodings())
"""The ``Accept-Encoding`` a Session sends: what this installation can decode."""

_KNOWN = {"gzip", "x-gzip", "deflate", "br", "zstd"}
_EXTRA = {"br": "tether[brotli] (brotli >= 1.2)", "zstd": "tether[zstd] (backports.zstd)"}


def codings_of(values: Iterable[str]) -> list[str]:
    """The codings named by Content-Encoding ``values``, in the order they were applied.

    ``identity`` is dropped. A coding nobody knows (``utf-8``, a misconfigured server's
    favourite) leaves the whole body as sent: ``[]``, as requests and browsers do.
    """
    codings = [c.strip().lower() for v in values for c in v.split(",")]
    codings = [c for c in codings if c and c != "identity"]
    if any(c not in _KNOWN for c in codings):
        return []
    return codings


class _Stage(Protocol):
    def feed(self, data: bytes) -> Iterator[bytes]: ...

    def finish(self) -> None: ...


class _Zlib:
    """gzip (any number of members) or deflate (zlib-wrapped or raw, told by its header)."""

    def __init__(self, coding: str) -> None:
        self._coding = coding
        self._gzip = coding != "deflate"
        self._head = b""  # deflate: the first bytes, until the header tells which kind
        self._d: Any = zlib.decompressobj(zlib.MAX_WBITS | 16) if self._gzip else None
        self._fed = False

    def feed(self, data: bytes) -> Iterator[bytes]:
        if self._d is None:
            self._head += data
            if len(self._head) < 2:
                return
            data, self._head = self._head, b""
            cmf, flg = data[0], data[1]
            wrapped = cmf & 0x0F == 8 and (cmf << 8 | flg) % 31 == 0  # RFC 1950's header
            self._d = zlib.decompressobj(zlib.MAX_WBITS if wrapped else -zlib.MAX_WBITS)
        try:
            yield from self._inflate(data)
        except zlib.error as exc:
            raise DecodingError(f"invalid {self._coding} data: {exc}") from None

    def _inflate(self, data: bytes) -> Iterator[bytes]:
        while data:
            d = self._d
            self._fed = True
            out = d.decompress(data, PIECE)
            data = d.unconsumed_tail
            while len(out) == PIECE and not data:  # output may be pending inside zlib
                yield out
                out = d.decompress(b"", PIECE)
                data = d.unconsumed_tail
            if out:
                yield out
            if d.eof:
                data = d.unused_data  # the input past the end (the tail is empty now)
                if not data.strip(b"\x00"):  # zero padding after the end is harmless
                    return
                if not (self._gzip and b"\x1f\x8b".startswith(data[:2])):  # another member?
                    extra = len(data)
                    raise DecodingError(f"{extra} bytes after the end of the {self._coding} data")
                self._d = zlib.decompressobj(zlib.MAX_WBITS | 16)  # the next gzip member
                self._fed = False

    def finish(self) -> None:
        if self._head or (self._fed and not self._d.eof):
            raise DecodingError(f"the {self._coding} data ended early (truncated)")


class _Brotli:
    def __init__(self) -> None:
        self._d = _brotli.Decompressor()
        self._fed = False

    def feed(self, data: bytes) -> Iterator[bytes]:
        d = self._d
        try:
            self._fed = True
            out = d.process(data, output_buffer_limit=PIECE)
            while out:  # the limit is loose and output may be pending: ask until none comes
                yield out
                out = d.process(b"", output_buffer_limit=PIECE)
        except _brotli.error as exc:
            raise DecodingError(f"invalid br data: {exc}") from None

    def finish(self) -> None:
        if self._fed and not self._d.is_finished():
            raise DecodingError("the br data ended early (truncated)")


class _Zstd:
    def __init__(self) -> None:
        self._d = self._new()
        self._fed = False

    @staticmethod
    def _new() -> Any:
        window = {_zstd.DecompressionParameter.window_log_max: _ZSTD_WINDOW_LOG}
        return _zstd.ZstdDecompressor(options=window)

    def feed(self, data: bytes) -> Iterator[bytes]:
        try:
            while data or (self._fed and not self._d.needs_input and not self._d.eof):
                if self._d.eof:  # another frame follows (RFC 8878 allows several)
                    self._d = self._new()
                self._fed = True
                out = self._d.decompress(data, PIECE)
                data = self._d.unused_data if self._d.eof else b""
                if out:
                    yield out
        except _zstd.ZstdError as exc:
            window = " (more than the 8 MiB window RFC 9659 allows)" if "memory" in str(exc) else ""
            raise DecodingError(f"invalid zstd data: {exc}{window}") from None

    def finish(self) -> None:
        if self._fed and not self._d.eof:
            raise DecodingError("the zstd data ended early (truncated)")


def _stage(coding: str) -> _Stage:
    if coding in ("gzip", "x-gzip", "deflate"):
        return _Zlib("gzip" if coding == "x-gzip" else coding)
    if coding == "br" and _brotli is not None:
        return _Brotli()
    if coding == "zstd" and _zstd is not None:
        return _Zstd()
    raise DecodingError(
        f"the body is {coding}-encoded and tether cannot decode {coding} here: "
        f"install {_EXTRA[coding]}, or read the undecoded bytes with iter_raw()"
    )


class Decoder:
    """Decodes a body whose ``codings`` were applied in that order; piece by piece."""

    def __init__(self, codings: list[str], limits: DecodeLimits) -> None:
        self._codings = codings
        self._stages = [_stage(c) for c in reversed(codings)]  # the last applied goes first
        self._limits = limits
        self.received = 0  # encoded bytes fed so far
        self.decoded = 0

    def feed(self, data: bytes) -> Iterator[bytes]:
        """Decoded pieces (each at most ``PIECE`` bytes) for the next ``data`` received."""
        self.received += len(data)
        for piece in self._through(0, data):
            self._count(len(piece))
            yield piece

    def finish(self) -> None:
        """The end of the body: DecodingError if any coding's data was cut short.

        Nothing is left to hand out: every stage returns all it can decode as it is fed.
        """
        for stage in self._stages:
            stage.finish()

    def _through(self, i: int, data: bytes) -> Iterator[bytes]:
        if i == len(self._stages):
            yield data
            return
        for piece in self._stages[i].feed(data):
            yield from self._through(i + 1, piece)

    def _count(self, size: int) -> None:
        self.decoded += size
        limits, decoded = self._limits, self.decoded
        named = ", ".join(self._codings)
        if limits.max_size is not None and decoded > limits.max_size:
            raise DecompressionLimitError(
                f"the {named}-encoded body decodes to more than {limits.max_size} bytes "
                f"(DecodeLimits.max_size)"
            )
        ratio = limits.max_ratio
        if ratio is not None and decoded > limits.ratio_after and decoded > ratio * self.received:
            raise DecompressionLimitError(
                f"the {named}-encoded body expands more than {ratio:g} times "
                f"({self.received} bytes received, {decoded} decoded so far: "
                f"DecodeLimits.max_ratio); a decompression bomb?"
            )


def decode_all(raw: bytes, codings: list[str], limits: DecodeLimits) -> bytes:
    """``raw`` decoded, fed in ``PIECE`` slices so the ratio is checked as it grows."""
    if not codings or not raw:
        return raw
    decoder = Decoder(codings, limits)
    pieces: list[bytes] = []
    view = memoryview(raw)
    for start in range(0, len(raw), PIECE):
        pieces.extend(decoder.feed(bytes(view[start : start + PIECE])))
    decoder.finish()
    return b"".join(pieces)


# -- text and re-chunking: one set of rules for Response and AsyncResponse -------------------


class Rechunker:
    """Cuts a stream of pieces into ``size``-byte chunks (None: pieces pass as they come)."""

    __slots__ = ("_buffer", "_size")

    def __init__(self, size: int | None) -> None:
        self._size = size
        self._buffer = bytearray()

    def push(self, piece: bytes) -> list[bytes]:
        """The whole chunks available after ``piece``."""
        size = self._size
        if size is None:
            return [piece] if piece else []
        buffer = self._buffer
        buffer += piece
        if len(buffer) < size:
            return []
        cut = len(buffer) - len(buffer) % size
        chunks = [bytes(buffer[i : i + size]) for i in range(0, cut, size)]
        del buffer[:cut]
        return chunks

    def flush(self) -> list[bytes]:
        """The last, shorter chunk (if any) at the end of the stream."""
        rest, self._buffer = bytes(self._buffer), bytearray()
        return [rest] if rest else []


def check_chunk_size(chunk_size: object) -> int | None:
    """``chunk_size`` if it is a positive int or None; ValueError otherwise."""
    if chunk_size is not None and (
        isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1
    ):
        raise ValueError(f"chunk_size must be a positive int or None, not {chunk_size!r}")
    return chunk_size


class LineSplitter(Generic[AnyStr]):
    """Lines out of a stream of text or bytes pieces: requests' ``iter_lines`` meaning,
    without its two slips: a ``\\r\\n`` cut between two pieces is one line end, not two (no
    phantom empty line), and a body that ends with ``delimiter`` yields no empty last line.

    Without ``delimiter`` lines end where ``splitlines()`` says; line ends are not kept.
    """

    __slots__ = ("_after_cr", "_delimiter", "_pending")

    def __init__(self, delimiter: AnyStr | None = None) -> None:
        self._delimiter: AnyStr | None = delimiter
        self._pending: list[AnyStr] = []  # the start of a line that has not ended yet
        self._after_cr = False  # the last piece ended with \r: a \n next belongs to it

    def push(self, piece: AnyStr) -> list[AnyStr]:
        """The lines that ``piece`` completes."""
        if self._delimiter is not None:
            return self._split(piece, self._delimiter)
        if self._after_cr and piece:
            self._after_cr = False
            if piece[:1] in ("\n", b"\n"):
                piece = piece[1:]
        if not piece:
            return []
        lines: list[AnyStr] = []
        parts = piece.splitlines(keepends=True)
        for part in parts:
            bare = part.splitlines()[0]
            if len(bare) == len(part):  # no line end: only the last part, the line goes on
                self._pending.append(part)
                break
            self._pending.append(bare)
            lines.append(self._take())
        self._after_cr = parts[-1][-1:] in ("\r", b"\r")
        return lines

    def _split(self, piece: AnyStr, delimiter: AnyStr) -> list[AnyStr]:
        if not piece:
            return []
        if self._pending:  # a delimiter may straddle two pieces
            piece = self._take() + piece
        lines = piece.split(delimiter)
        rest = lines.pop()
        if rest:
            self._pending.append(rest)
        return lines

    def _take(self) -> AnyStr:
        pending, self._pending = self._pending, []
        return pending[0] if len(pending) == 1 else pending[0][:0].join(pending)

    def flush(self) -> list[AnyStr]:
        """The last line, when the body did not end with a line end."""
        return [self._take()] if self._pending else []


# -- charsets -------------------------------------------------------------------------------

DETECT_MIN = 256  # below this a charset detector guesses wrong more often than windows-1252
DETECT_SAMPLE = 64 * 1024  # enough to tell; detecting over megabytes would take seconds
_LATIN1_FALLBACK = "tether.latin1-fallback"


def _latin1_fallback(exc: UnicodeError) -> tuple[str, int]:
    # windows-1252 leaves 0x81, 0x8D, 0x8F, 0x90 and 0x9D undefined; WHATWG maps them to the
    # C1 controls of the same number, as ISO-8859-1 does.
    if not isinstance(exc, UnicodeDecodeError):
        raise exc
    return exc.object[exc.start : exc.end].decode("latin-1"), exc.end


codecs.register_error(_LATIN1_FALLBACK, _latin1_fallback)


def known_codec(name: str) -> bool:
    """Is ``name`` a text encoding Python can decode with?"""
    try:
        return codecs.lookup(name)._is_text_encoding
    except (LookupError, TypeError, ValueError):
        return False


def charset_of(content_type: str) -> str | None:
    """The charset parameter of a Content-Type value, if Python knows it."""
    for param in content_type.split(";")[1:]:
        key, _, value = param.partition("=")
        charset = value.strip().strip('"').strip()
        if key.strip().lower() == "charset" and charset:
            return charset if known_codec(charset) else None
    return None


def detect_charset(content: bytes) -> str | None:
    """charset_normalizer's guess, if it is installed (requests brings it) and ``content`` is
    long enough to guess from; None otherwise. tether does not depend on it."""
    if len(content) < DETECT_MIN:
        return None
    detector = _optional("charset_normalizer")
    if detector is None:
        return None
    best = detector.from_bytes(content[:DETECT_SAMPLE]).best()
    return None if best is None or not known_codec(best.encoding) else str(best.encoding)


def decode_text(content: bytes, encoding: str | None) -> str:
    """``content`` as text: in ``encoding`` (bad bytes become U+FFFD); without one, UTF-8 if
    it is valid UTF-8, else a detected charset (see `detect_charset`), else windows-1252 (the
    WHATWG "latin-1") with ISO-8859-1 for its five undefined bytes: never raises."""
    if encoding is not None:
        return content.decode(encoding, errors="replace")
    try:
        return content.decode("utf-8")
    except UnicodeDecodeError:
        pass
    guessed = detect_charset(content)
    if guessed is not None:
        return content.decode(guessed, errors="replace")
    return content.decode("cp1252", errors=_LATIN1_FALLBACK)


class TextDecoder:
    """``decode_text`` for a body that arrives in pieces (``iter_text``).

    Without an ``encoding`` the first piece decides: UTF-8 if it is valid UTF-8 (a later
    bad byte becomes U+FFFD), else the charset ``decode_text`` would pick for that piece.
    """

    __slots__ = ("_decoder", "_encoding")

    def __init__(self, encoding: str | None) -> None:
        self._encoding = encoding
        self._decoder: codecs.IncrementalDecoder | None = None
        if encoding is not None:
            self._decoder = codecs.getincrementaldecoder(encoding)(errors="replace")

    def push(self, data: bytes) -> str:
        """The text of ``data`` (a character cut at the end waits for the next piece)."""
        if self._decoder is None:
            if not data:
                return ""
            self._decoder = self._choose(data)
        return self._decoder.decode(data)

    @staticmethod
    def _choose(first: bytes) -> codecs.IncrementalDecoder:
        try:
            codecs.getincrementaldecoder("utf-8")().decode(first)
            return codecs.getincrementaldecoder("utf-8")(errors="replace")
        except UnicodeDecodeError:
            pass
        guessed = detect_charset(first)
        if guessed is not None:
            return codecs.getincrementaldecoder(guessed)(errors="replace")
        return codecs.getincrementaldecoder("cp1252")(errors=_LATIN1_FALLBACK)

    def flush(self) -> str:
        """Whatever the end of the body completes (U+FFFD for a cut character)."""
        return self._decoder.decode(b"", final=True) if self._decoder is not None else ""
