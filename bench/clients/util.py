"""Small helpers for client modules: which library versions and files were loaded."""

from __future__ import annotations

import importlib.metadata
import sys


def version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def loaded(module: str) -> str:
    """``"<version> <file>"`` of an imported module, e.g. which urllib3 is in use."""
    mod = sys.modules.get(module)
    if mod is None:
        return "not loaded"
    return f"{getattr(mod, '__version__', '?')} {getattr(mod, '__file__', '?')}"


def info(*dists: str, modules: tuple[str, ...] = ()) -> dict[str, str]:
    out = {d: version(d) for d in dists}
    for m in modules:
        out[f"{m} loaded"] = loaded(m)
    out["python"] = sys.version.split()[0]
    return out


def _main() -> None:
    """Print a JSON object of the versions installed in this venv (for the report)."""
    import importlib
    import json

    dists = [
        "tether",
        "requests",
        "urllib3",
        "urllib3-future",
        "httpx",
        "httpcore",
        "h11",
        "h2",
        "niquests",
        "pycurl",
        "aiohttp",
        "httptools",
        "trustme",
        "certifi",
    ]
    out: dict[str, str] = {d: version(d) for d in dists if version(d) != "not installed"}
    for mod in ("urllib3", "urllib3_future"):
        try:
            m = importlib.import_module(mod)
            out[f"{mod} loaded"] = f"{getattr(m, '__version__', '?')} {m.__file__}"
        except Exception as e:
            out[f"{mod} loaded"] = f"not importable ({type(e).__name__})"
    try:
        import pycurl

        out["libcurl"] = pycurl.version
    except Exception:
        pass
    out["python"] = sys.version.split()[0]
    print(json.dumps(out))


if __name__ == "__main__":
    _main()
