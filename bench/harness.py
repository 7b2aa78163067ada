"""Benchmark orchestrator: start nginx on one core, run every (client, scenario) as a
pinned subprocess on the other, repeat, take medians, write RESULTS.md.

Run it through ``bench/run`` (which prepares the venvs); it must run under the
bench venv's Python because it uses ``trustme`` for the throwaway CA.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from clients.registry import ROWS, SCENARIOS, Row, Scenario  # noqa: E402
from nginx_server import Nginx  # noqa: E402
from report import write_report  # noqa: E402

VENVS = {"main": HERE / ".venv", "niquests": HERE / ".venv-niquests"}


def client_env() -> dict[str, str]:
    """A minimal, explicit environment for the client subprocesses.

    No proxy or CA-bundle variables (REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE, ...): TLS
    runs get the test CA explicitly.  A small environment also keeps results
    independent of the machine: requests scans os.environ on every request.

    The repository's own ``src`` comes first on the path: the tether measured is the one
    ``tether_commit`` names (from a git worktree the venv's editable install points elsewhere)."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/root"),
        "LANG": "C.UTF-8",
        "PYTHONPATH": os.pathsep.join([str(HERE), str(HERE.parent / "src")]),
    }
    return env


def cmd_output(cmd: list[str]) -> str:
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
        return (r.stdout + r.stderr).strip()
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"unavailable ({e})"


def first_line(cmd: list[str]) -> str:
    if not shutil.which(cmd[0]):
        return f"{cmd[0]} missing"
    return (cmd_output(cmd).splitlines() or ["?"])[0]


def machine_info(args: argparse.Namespace) -> dict[str, Any]:
    lscpu = cmd_output(["lscpu"])
    model = next(
        (ln.split(":", 1)[1].strip() for ln in lscpu.splitlines() if ln.startswith("Model name")),
        platform.processor() or "?",
    )
    mem = "?"
    try:
        with open("/proc/meminfo") as f:
            kb = int(f.readline().split()[1])
        mem = f"{kb / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    versions = {}
    for name, venv in VENVS.items():
        out = cmd_output([str(venv / "bin" / "python"), "-m", "clients.util"])
        try:
            versions[name] = json.loads(out.splitlines()[-1])
        except (ValueError, IndexError):
            versions[name] = {"error": out[-300:]}
    nginx_v = cmd_output(["nginx", "-v"]).splitlines()
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu_model": model,
        "nproc": os.cpu_count(),
        "memory": mem,
        "kernel": platform.release(),
        "python": sys.version.split()[0],
        "nginx": nginx_v[0] if nginx_v else "?",
        "wrk": first_line(["wrk", "--version"]),
        "h2load": first_line(["h2load", "--version"]),
        "server_cpu": args.server_cpu,
        "client_cpu": args.client_cpu,
        "reps": args.reps,
        "time_bound": args.time,
        "quick": args.quick,
        "versions": versions,
        "tether_commit": git_describe(),
    }


def git_describe() -> str:
    """The repo commit the tether under test comes from (and whether src/ is modified)."""
    root = HERE.parent
    head = cmd_output(["git", "-C", str(root), "rev-parse", "--short", "HEAD"])
    if not re.fullmatch(r"[0-9a-f]{4,40}", head):
        return "unknown (not a git checkout)"
    dirty = cmd_output(["git", "-C", str(root), "status", "--porcelain", "--", "src"])
    return f"commit {head}" + (" + uncommitted changes in src/" if dirty else "")


# --- one run -----------------------------------------------------------------


def _children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def busy_cpu_seconds() -> float:
    """CPU time all processes on the machine have used (from /proc/stat)."""
    with open("/proc/stat") as f:
        parts = f.readline().split()
    user, nice, system, _idle, _iowait, irq, softirq = (int(x) for x in parts[1:8])
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def self_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def run_python(
    row: Row, sc: Scenario, ng: Nginx, n: int, args: argparse.Namespace
) -> dict[str, Any]:
    warmup = args.warmup if sc.mode != "cold" else max(5, args.warmup // 10)
    cmd = [
        "taskset",
        "-c",
        str(args.client_cpu),
        str(VENVS[row.venv] / "bin" / "python"),
        "-m",
        "clients.runner",
        "--row",
        row.key,
        "--scenario",
        sc.key,
        "--port",
        str(ng.ports[sc.listener]),
        "--n",
        str(n),
        "--t",
        str(args.time),
        "--warmup",
        str(warmup),
        "--cafile",
        ng.cafile,
    ]
    try:
        r = subprocess.run(
            cmd, capture_output=True, text=True, env=client_env(), cwd=HERE, timeout=args.time + 90
        )
    except subprocess.TimeoutExpired:
        return {"ok": False, "error": f"timed out after {args.time + 90:.0f} s"}
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("{")]
    if not lines:
        return {
            "ok": False,
            "error": f"no JSON (exit {r.returncode}): "
            + (r.stderr.strip().splitlines() or ["no output"])[-1][:300],
        }
    return dict(json.loads(lines[-1]))


def run_wrk(sc: Scenario, ng: Nginx, args: argparse.Namespace) -> dict[str, Any]:
    scheme = "http" if sc.listener == "plain" else "https"
    url = f"{scheme}://127.0.0.1:{ng.ports[sc.listener]}/{sc.body}"
    conns = str(sc.concurrency)
    secs = max(1, round(args.time))
    cmd = ["taskset", "-c", str(args.client_cpu), "wrk", "-t1", f"-c{conns}", f"-d{secs}s"]
    if sc.mode == "cold":
        cmd += ["-H", "Connection: close"]
    cmd.append(url)
    cpu0 = _children_cpu()
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=secs + 60, env=client_env())
    except subprocess.TimeoutExpired:
        return {"ok": False, "error": "wrk timed out"}
    cpu = _children_cpu() - cpu0
    out = r.stdout + r.stderr
    m = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)\b", out)
    if r.returncode != 0 or not m:
        return {"ok": False, "error": f"wrk failed: {out.strip()[-300:]}"}
    unit = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[m.group(3)]
    res: dict[str, Any] = {
        "ok": True,
        "requests": int(m.group(1)),
        "wall_s": float(m.group(2)) * unit,
        "cpu_s": cpu,
        "warmup": 0,
    }
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if bad:
        return {"ok": False, "error": f"wrk: {bad.group(1)} non-2xx responses"}
    errs = re.search(r"Socket errors: (.*)", out)
    if errs:
        res["note"] = f"wrk socket errors: {errs.group(1).strip()}"
    return res


def run_h2load(sc: Scenario, ng: Nginx, n: int, args: argparse.Namespace) -> dict[str, Any]:
    url = f"https://127.0.0.1:{ng.ports[sc.listener]}/{sc.body}"
    cmd = [
        "taskset",
        "-c",
        str(args.client_cpu),
        "h2load",
        "-n",
        str(n),
        "-c1",
        f"-m{sc.concurrency}",
        url,
    ]
    cpu0 = _children_cpu()
    try:
        r = subprocess.run(
            cmd, capture_output=True, text=True, timeout=args.time + 60, env=client_env()
        )
    except subprocess.TimeoutExpired:
        return {"ok": False, "error": "h2load timed out"}
    cpu = _children_cpu() - cpu0
    out = r.stdout + r.stderr
    fin = re.search(r"finished in ([\d.]+)(us|ms|s)", out)
    reqs = re.search(
        r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, "
        r"(\d+) failed, (\d+) errored",
        out,
    )
    codes = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", out)
    proto = re.search(r"Application protocol: (\S+)", out)
    if r.returncode != 0 or not (fin and reqs and codes):
        return {"ok": False, "error": f"h2load failed: {out.strip()[-300:]}"}
    if proto and proto.group(1) != "h2":
        return {"ok": False, "error": f"h2load negotiated {proto.group(1)}, not h2"}
    ok2xx = int(codes.group(1))
    if int(reqs.group(5)) or int(reqs.group(6)) or ok2xx != int(reqs.group(3)):
        return {"ok": False, "error": f"h2load: {reqs.group(0)}; {codes.group(0)}"}
    unit = {"us": 1e-6, "ms": 1e-3, "s": 1.0}[fin.group(2)]
    return {
        "ok": True,
        "requests": ok2xx,
        "wall_s": float(fin.group(1)) * unit,
        "cpu_s": cpu,
        "warmup": 0,
        "info": {"http_versions": "h2"},
    }


def run_one(row: Row, sc: Scenario, ng: Nginx, args: argparse.Namespace) -> dict[str, Any]:
    n = sc.n_quick if args.quick else sc.n
    before = ng.status()
    busy0, nginx0, child0, self0 = busy_cpu_seconds(), ng.cpu_seconds(), _children_cpu(), self_cpu()
    t0 = time.monotonic()
    if row.kind == "external":
        res = run_wrk(sc, ng, args) if row.impl[sc.key] == "wrk" else run_h2load(sc, ng, n, args)
    else:
        res = run_python(row, sc, ng, n, args)
    elapsed = time.monotonic() - t0
    # CPU that neither the client, nginx nor this harness used: other work on the
    # machine during the run (a noise indicator; 1.0 = one whole CPU).
    ours = (ng.cpu_seconds() - nginx0) + (_children_cpu() - child0) + (self_cpu() - self0)
    res["foreign_cpu"] = max(0.0, (busy_cpu_seconds() - busy0 - ours) / elapsed) if elapsed else 0
    after = ng.status()
    # the stub_status request made for "after" is itself one connection and one request
    res["server_connections"] = after["accepts"] - before["accepts"] - 1
    res["server_requests"] = after["requests"] - before["requests"] - 1
    res["elapsed_s"] = elapsed
    if res.get("ok") and row.kind != "external":
        claimed = int(res.get("requests", 0)) + int(res.get("warmup", 0))
        if res["server_requests"] < claimed:
            res["ok"] = False
            res["error"] = (
                f"client claims {claimed} responses but the server saw only "
                f"{res['server_requests']} requests"
            )
    return res


# --- main ----------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="short bounds, 2 repetitions")
    ap.add_argument("--reps", type=int, default=None, help="repetitions (default 5; quick 2)")
    ap.add_argument(
        "--mem-reps",
        type=int,
        default=None,
        help="repetitions of the memory scenarios (default 2; quick 1)",
    )
    ap.add_argument(
        "--time",
        type=float,
        default=None,
        help="time bound per measured run in seconds (default 1.5; quick 0.5)",
    )
    ap.add_argument("--warmup", type=int, default=None, help="warm-up requests (200; quick 50)")
    ap.add_argument("--rows", default="", help="comma-separated row keys to run (default all)")
    ap.add_argument("--scenarios", default="", help="comma-separated scenarios (default all)")
    ap.add_argument("--server-cpu", type=int, default=0)
    ap.add_argument("--client-cpu", type=int, default=1)
    ap.add_argument("--out", default=str(HERE / "RESULTS.md"))
    args = ap.parse_args()
    if args.reps is None:
        args.reps = 2 if args.quick else 5
    if args.mem_reps is None:
        args.mem_reps = 1 if args.quick else 2
    if args.time is None:
        args.time = 0.5 if args.quick else 1.5
    if args.warmup is None:
        args.warmup = 50 if args.quick else 200
    return args


def _terminate(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def main() -> int:
    signal.signal(signal.SIGTERM, _terminate)  # so nginx is stopped on the way out
    args = parse_args()
    if (os.cpu_count() or 1) < 2:
        print("warning: fewer than 2 CPUs; server and client share CPU 0", file=sys.stderr)
        args.server_cpu = args.client_cpu = 0
    rows = [r for r in ROWS if not args.rows or r.key in args.rows.split(",")]
    scenarios = [
        s for s in SCENARIOS.values() if not args.scenarios or s.key in args.scenarios.split(",")
    ]
    jobs = [(row, sc) for sc in scenarios for row in rows if sc.key in row.impl]
    if not jobs:
        print("nothing to run", file=sys.stderr)
        return 2
    info = machine_info(args)
    workdir = Path(tempfile.mkdtemp(prefix="tether-bench-"))
    ng = Nginx(workdir / "nginx", server_cpu=args.server_cpu)
    results: dict[tuple[str, str], list[dict[str, Any]]] = {}
    t_start = time.monotonic()
    try:
        ng.prepare()
        ng.start()
        for rep in range(args.reps):
            for row, sc in jobs:
                if sc.mode == "mem" and rep >= args.mem_reps:
                    continue  # memory needs fewer repetitions
                res = run_one(row, sc, ng, args)
                results.setdefault((sc.key, row.key), []).append(res)
                if res.get("ok") and sc.mode == "mem":
                    msg = (
                        f"{res['rss_per_conn'] / 1024:6.1f} KiB RSS/conn  "
                        f"{res['traced_per_conn'] / 1024:5.2f} KiB traced/conn"
                    )
                elif res.get("ok"):
                    rps = res["requests"] / res["wall_s"] if res["wall_s"] else 0
                    msg = f"{rps:9.0f} req/s  {res['server_connections']:5d} conns"
                else:
                    msg = f"FAILED: {res.get('error', '?')[:90]}"
                print(
                    f"[rep {rep + 1}/{args.reps} {time.monotonic() - t_start:6.0f}s] "
                    f"{sc.key:12} {row.key:18} {msg}",
                    flush=True,
                )
    finally:
        ng.cleanup()
        shutil.rmtree(workdir, ignore_errors=True)
    info["total_seconds"] = round(time.monotonic() - t_start)
    raw = {
        "info": info,
        "results": [{"scenario": s, "row": r, "runs": runs} for (s, r), runs in results.items()],
    }
    (HERE / ".last-run.json").write_text(json.dumps(raw, indent=1, default=str))
    text = write_report(info, results, Path(args.out))
    print()
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
