"""curl_cffi (libcurl through cffi, what many scrapers use): Session over HTTP/1.1 and
HTTP/2, and AsyncSession over HTTP/2.  No browser impersonation: plain libcurl
settings, so the rows compare the Python layer, not a fingerprint.

``Session`` keeps one curl handle per thread (``use_thread_local_curl``), so 16
threads on one Session are 16 handles, each with its own connection.
"""

from __future__ import annotations

from curl_cffi.requests import AsyncSession, Session

from .drivers import AsyncClient, Ctx, SyncClient
from .util import info


def _info() -> dict[str, str]:
    import curl_cffi

    return info("curl_cffi") | {"libcurl": str(getattr(curl_cffi, "__curl_version__", "?"))}


def _kw(ctx: Ctx, http_version: str) -> dict[str, object]:
    kw: dict[str, object] = {"http_version": http_version, "trust_env": False}
    if ctx.tls:
        kw["verify"] = ctx.cafile
    return kw


def _version_name(v: object) -> str:
    try:
        return {1: "HTTP/1.0", 2: "HTTP/1.1", 3: "HTTP/2", 30: "HTTP/3"}[int(v)]  # type: ignore[call-overload]
    except (KeyError, TypeError, ValueError):
        return str(v)


def _sync(ctx: Ctx, http_version: str) -> SyncClient:
    s = Session(**_kw(ctx, http_version))  # type: ignore[arg-type]
    url = ctx.url
    sget = s.get
    seen: set[int] = set()
    add = seen.add

    def get() -> tuple[int, bytes]:
        r = sget(url)
        add(r.http_version)
        return r.status_code, r.content

    return SyncClient(
        get=get,
        close=s.close,
        info=_info(),
        describe=lambda: {"http_versions": ",".join(sorted(map(_version_name, seen)))},
    )


def session(ctx: Ctx) -> SyncClient:
    """HTTP/1.1 (the HTTP/1.1 listeners offer nothing else)."""
    return _sync(ctx, "v1")


def session_h2(ctx: Ctx) -> SyncClient:
    """HTTP/2 over TLS (ALPN); sequential, or one handle per thread."""
    return _sync(ctx, "v2")


async def async_session_h2(ctx: Ctx) -> AsyncClient:
    """AsyncSession over HTTP/2: up to ``ctx.concurrency`` handles in one CurlMulti."""
    s = AsyncSession(max_clients=ctx.concurrency, **_kw(ctx, "v2"))  # type: ignore[arg-type]
    url = ctx.url
    sget = s.get
    seen: set[int] = set()
    add = seen.add

    async def get() -> tuple[int, bytes]:
        r = await sget(url)
        add(r.http_version)
        return r.status_code, r.content

    return AsyncClient(
        get=get,
        close=s.close,
        info=_info(),
        describe=lambda: {"http_versions": ",".join(sorted(map(_version_name, seen)))},
    )
