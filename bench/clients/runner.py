"""Run one (client, scenario) and print one JSON line.

Usage (the harness does this, pinned with ``taskset -c 1``)::

    python -m clients.runner --row requests-session --scenario seq_small \\
        --port 8080 --n 5000 --t 5 --warmup 200 [--cafile ca.pem]

The JSON line always has ``ok``; on success also ``requests``, ``wall_s``,
``cpu_s`` (process CPU time, all threads, measured loop only), ``warmup`` and
``info`` (library versions, the urllib3 that was loaded, ...).  A client that
cannot be imported yields ``{"ok": false, "error": "<lib> not importable: ..."}``.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import sys
import traceback
from typing import Any

from . import drivers
from .bodies import body
from .registry import ROWS_BY_KEY, SCENARIOS


def _load(target: str) -> Any:
    module, _, func = target.partition(":")
    return getattr(importlib.import_module(f"clients.{module}"), func)


def run(args: argparse.Namespace) -> dict[str, Any]:
    row = ROWS_BY_KEY[args.row]
    sc = SCENARIOS[args.scenario]
    target = row.impl[sc.key]
    try:
        factory = _load(target)
    except Exception as e:  # the library is missing or broken: say so in the table
        lib = target.split(":")[0].removeprefix("c_")
        return {"ok": False, "error": f"{lib} not importable: {type(e).__name__}: {e}"}
    ctx = drivers.Ctx(
        scheme="http" if sc.listener == "plain" else "https",
        host="127.0.0.1",
        port=args.port,
        path=f"/{sc.body}",
        cafile=args.cafile,
        concurrency=sc.concurrency,
        h2=sc.listener == "h2",
    )
    p = drivers.Params(n=args.n, t=args.t, warmup=args.warmup, expected=body(sc.body))

    if row.kind == "custom":
        return dict(factory(ctx, p))

    if sc.mode == "mem":
        return drivers.run_mem(lambda: factory(ctx), p, sc.concurrency)

    if row.kind == "async":

        async def main() -> dict[str, Any]:
            client = await factory(ctx)
            try:
                concurrency = sc.concurrency if sc.mode in ("conc", "h2") else 1
                res = await drivers.run_tasks(client, p, concurrency)
                res["client_connections"] = client.connections()
                res["info"] = {**client.info, **client.describe()}
                return res
            finally:
                await client.close()

        return asyncio.run(main())

    if sc.mode in ("conc", "h2") and row.per_thread:
        clients: list[drivers.SyncClient] = []

        def make_get(i: int) -> drivers.Get:
            c = factory(ctx)
            clients.append(c)
            return c.get

        try:
            res = drivers.run_threads(make_get, p, sc.concurrency)
            conns = [c.connections() for c in clients]
            res["client_connections"] = (
                None if any(x is None for x in conns) else sum(x or 0 for x in conns)
            )
            res["info"] = {**clients[0].info, **clients[0].describe()} if clients else {}
            return res
        finally:
            for c in clients:
                c.close()

    client = factory(ctx)
    try:
        if sc.mode in ("conc", "h2"):
            res = drivers.run_threads(lambda i: client.get, p, sc.concurrency)
        else:
            res = drivers.run_seq(client, p)
        res["client_connections"] = client.connections()
        res["info"] = {**client.info, **client.describe()}
        return res
    finally:
        client.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--row", required=True, choices=sorted(ROWS_BY_KEY))
    ap.add_argument("--scenario", required=True, choices=sorted(SCENARIOS))
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--n", type=int, required=True, help="request bound")
    ap.add_argument("--t", type=float, required=True, help="time bound, seconds")
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--cafile", default=None)
    args = ap.parse_args()
    try:
        res = run(args)
    except BaseException as e:
        res = {
            "ok": False,
            "error": f"{type(e).__name__}: {e}",
            "traceback": traceback.format_exc(limit=8),
        }
    sys.stdout.write(json.dumps(res) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
