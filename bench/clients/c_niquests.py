"""niquests (runs in its own venv, .venv-niquests, so the main venv keeps the real
urllib3): Session, niquests.get(), and a multiplexed Session over HTTP/2."""

from __future__ import annotations

import time
from typing import Any

import niquests

from .drivers import Ctx, Params, SyncClient, check_full
from .util import info


def _info() -> dict[str, str]:
    import sys

    import urllib3_future  # noqa: F401  (niquests' urllib3 fork; report which one)

    out = info("niquests", "urllib3-future", "urllib3", modules=("urllib3_future",))
    mod = sys.modules.get("urllib3")
    out["urllib3 loaded"] = (
        f"{getattr(mod, '__version__', '?')} {mod.__file__}" if mod is not None else "not loaded"
    )
    return out


def _version_name(v: object) -> str:
    """niquests reports the HTTP version as an int (11, 20, 30)."""
    return f"HTTP/{v / 10:g}" if isinstance(v, int) else str(v)


def _session(ctx: Ctx, maxsize: int, **kw: object) -> niquests.Session:
    s = niquests.Session(pool_connections=1, pool_maxsize=maxsize, **kw)  # type: ignore[arg-type]
    if ctx.tls:
        s.verify = ctx.cafile
    return s


def session(ctx: Ctx) -> SyncClient:
    # HTTP/1.1 listeners do not offer h2 in ALPN, so this is HTTP/1.1 throughout.
    s = _session(ctx, ctx.concurrency, disable_http3=True)
    url = ctx.url
    sget = s.get

    def get() -> tuple[int, bytes]:
        r = sget(url)
        return r.status_code, r.content  # type: ignore[return-value]

    return SyncClient(get=get, close=s.close, info=_info())


def session_h2(ctx: Ctx) -> SyncClient:
    """A plain (not multiplexed) Session limited to HTTP/2: sequential requests."""
    s = _session(ctx, 1, disable_http1=True, disable_http3=True)
    url = ctx.url
    sget = s.get
    seen: set[str] = set()
    add = seen.add

    def get() -> tuple[int, bytes]:
        r = sget(url)
        add(_version_name(r.http_version))
        return r.status_code, r.content  # type: ignore[return-value]

    return SyncClient(
        get=get,
        close=s.close,
        info=_info(),
        describe=lambda: {"http_versions": ",".join(sorted(seen))},
    )


def multiplexed_h2(ctx: Ctx, p: Params) -> dict[str, Any]:
    """HTTP/2 on one connection the niquests way: ``Session(multiplexed=True)`` sends
    a batch of 16 lazy requests, ``gather()`` waits for them all, then the next
    batch (niquests has no refill-as-they-complete API for threads)."""
    s = _session(ctx, 1, multiplexed=True, disable_http1=True, disable_http3=True)
    url = ctx.url
    sget = s.get
    gather = s.gather
    expected = p.expected
    batch = ctx.concurrency
    versions: set[str] = set()

    def run(total: int, seconds: float, full_every: int) -> int:
        deadline = time.perf_counter() + seconds
        done = 0
        while done < total and time.perf_counter() < deadline:
            rs = [sget(url) for _ in range(min(batch, total - done))]
            gather()
            for r in rs:
                status, body = r.status_code, r.content
                if status != 200 or len(body or b"") != len(expected) or not done % full_every:
                    check_full(status or 0, body or b"", expected)
                done += 1
            versions.add(_version_name(rs[0].http_version))
        return done

    try:
        run(p.warmup, 30.0, 1)
        cpu0 = time.process_time()
        t0 = time.perf_counter()
        done = run(p.n, p.t, 64)
        wall = time.perf_counter() - t0
        cpu = time.process_time() - cpu0
    finally:
        s.close()
    return {
        "ok": True,
        "requests": done,
        "wall_s": wall,
        "cpu_s": cpu,
        "warmup": p.warmup,
        "info": _info() | {"http_versions": ",".join(sorted(versions))},
    }


def oneshot(ctx: Ctx) -> SyncClient:
    url = ctx.url
    verify: str | bool = ctx.cafile if ctx.tls and ctx.cafile else True
    nget = niquests.get

    def get() -> tuple[int, bytes]:
        r = nget(url, verify=verify)
        return r.status_code, r.content  # type: ignore[return-value]

    return SyncClient(get=get, info=_info())
