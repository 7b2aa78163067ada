"""Real proxies on loopback for the proxy tests: squid, tinyproxy and microsocks.

- ``Squid``: forward proxy and CONNECT. ``ports[0]`` needs no credentials, ``ports[1]``
  requires Basic auth (``USER``/``PASSWORD``, a password with reserved characters). Its
  access log (``entries()``) has one line per forwarded request, naming the client
  connection (``ip:port``), and one line per CONNECT tunnel, written when the tunnel closes.
- ``Tinyproxy``: forward and CONNECT, closes the client connection after every request;
  ``connections()`` counts the client connections it accepted.
- ``Dante``: SOCKS4, SOCKS4a and SOCKS5 without authentication; ``tunnels()`` counts the
  client connections it accepted.
- ``Microsocks``: SOCKS5 (names resolved by the proxy for socks5h), with ``auth=True``
  requiring ``USER``/``PASSWORD``; ``tunnels()`` counts the tunnels it opened.

squid and tinyproxy drop root privileges (to ``proxy`` and ``nobody``), and pytest's tmp
directories are private to root, so they run in a directory of their own under /tmp that
they own, removed at stop.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import trustme

from .process import AccessEntry, ServerProcess

USER = "alice"
PASSWORD = "s3:cr@t/%"  # reserved characters: percent-encoded in a proxy URL


def find(binary: str) -> str | None:
    """Path of a proxy binary (sbin included), or None."""
    for directory in ("/usr/sbin", "/usr/bin"):
        path = os.path.join(directory, binary)
        if os.access(path, os.X_OK):
            return path
    return shutil.which(binary)


def _own_dir(prefix: str, user: str) -> Path:
    path = Path(tempfile.mkdtemp(prefix=prefix))
    os.chmod(path, 0o755)
    if os.geteuid() == 0:
        entry = pwd.getpwnam(user)
        os.chown(path, entry.pw_uid, entry.pw_gid)
    return path


@dataclass(frozen=True)
class SquidEntry:
    """One squid access-log line: the client connection, what happened, on which port."""

    client: str  # ip:port of the client's connection to squid
    local_port: int  # squid's listening port
    result: str  # e.g. TCP_MISS/200, TCP_TUNNEL/200, TCP_DENIED/407
    method: str
    url: str
    user: str


class _OwnedDirProxy(ServerProcess):
    """A proxy that runs as ``run_as`` in a /tmp directory it owns."""

    run_as = "nobody"
    stop_grace = 0.2  # nothing to drain: SIGKILL soon after SIGTERM

    def __init__(self, ca: trustme.CA, binary: str) -> None:
        super().__init__(_own_dir(f"tether-{self.name}-", self.run_as), binary=binary, ca=ca)

    def _chown(self) -> None:
        if os.geteuid() == 0:
            entry = pwd.getpwnam(self.run_as)
            for path in self.workdir.iterdir():
                os.chown(path, entry.pw_uid, entry.pw_gid)

    def _parse_access_log(self) -> list[AccessEntry]:
        return []  # proxies are counted by their own logs (see each class)

    def stop(self) -> None:
        super().stop()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def proxy_url(self, index: int = 0, auth: bool = False) -> str:
        """``http://[user:pass@]127.0.0.1:P`` of port ``index`` (credentials percent-encoded)."""
        from urllib.parse import quote

        creds = f"{quote(USER, safe='')}:{quote(PASSWORD, safe='')}@" if auth else ""
        return f"http://{creds}{self.host}:{self.ports[index]}"


class Squid(_OwnedDirProxy):
    name = "squid"
    run_as = "proxy"
    ports_needed = 2

    def _command(self) -> list[str]:
        d = self.workdir
        hashed = subprocess.run(
            ["openssl", "passwd", "-apr1", PASSWORD], capture_output=True, text=True, check=True
        ).stdout.strip()
        (d / "passwd").write_text(f"{USER}:{hashed}\n")
        auth_port = f"127.0.0.1:{self.ports[1]}"
        (d / "squid.conf").write_text(f"""
http_port 127.0.0.1:{self.ports[0]}
http_port {auth_port}
{self._tls_config()}
visible_hostname localhost
pid_filename {d}/squid.pid
cache_log {d}/cache.log
logformat conn %>a:%>p %>lp %Ss/%03>Hs %rm %ru %[un
access_log stdio:{d}/access.log conn
coredump_dir {d}
cache deny all
pinger_enable off
dns_nameservers 127.0.0.1
shutdown_lifetime 0 seconds
auth_param basic program /usr/lib/squid/basic_ncsa_auth {d}/passwd
auth_param basic realm test
acl authed proxy_auth REQUIRED
acl authport myportname {auth_port}
acl src_local src 127.0.0.1/32 ::1
http_access deny !src_local
http_access deny authport !authed
http_access allow src_local
http_access deny all
""")
        self._chown()
        return [self.binary, "-N", "-f", str(d / "squid.conf")]

    def _tls_config(self) -> str:
        return ""  # TLSSquid: https_port listeners

    def wait_for(self, method: str, count: int, timeout: float = 3.0) -> list[SquidEntry]:
        """The ``method`` entries once there are ``count`` (squid logs a moment later)."""
        deadline = time.monotonic() + timeout
        while True:
            found = [e for e in self.entries() if e.method == method]
            if len(found) >= count or time.monotonic() >= deadline:
                return found
            time.sleep(0.02)

    def entries(self) -> list[SquidEntry]:
        """The access log so far (a CONNECT is logged when its tunnel closes)."""
        path = self.workdir / "access.log"
        if not path.exists():
            return []
        found = []
        for line in path.read_text(errors="replace").splitlines():
            parts = line.split()
            if len(parts) == 6 and not parts[2].startswith("NONE"):  # NONE: a readiness probe
                found.append(
                    SquidEntry(parts[0], int(parts[1]), parts[2], parts[3], parts[4], parts[5])
                )
        return found


class TLSSquid(Squid):
    """Squid with two ``https_port`` listeners as well (an https:// proxy): ``ports[2]``
    needs no credentials, ``ports[3]`` requires Basic auth. Their certificate names
    ``localhost`` only, so a URL naming 127.0.0.1 shows that the proxy's name is checked.
    (Debian's squid is built with GnuTLS, which serves https_port; ssl-bump it would not.)"""

    ports_needed = 4

    def _tls_config(self) -> str:
        d = self.workdir
        cert = self.ca.issue_cert("localhost")
        cert.private_key_pem.write_to_path(str(d / "proxy.key"))
        (d / "proxy.pem").write_bytes(b"".join(blob.bytes() for blob in cert.cert_chain_pems))
        files = f"tls-cert={d}/proxy.pem tls-key={d}/proxy.key"
        auth_port = f"127.0.0.1:{self.ports[3]}"
        return (
            f"https_port 127.0.0.1:{self.ports[2]} {files}\n"
            f"https_port {auth_port} {files}\n"
            f"acl authport myportname {auth_port}\n"
        )

    def https_url(self, auth: bool = False, host: str = "localhost") -> str:
        """``https://[user:pass@]host:P``, the TLS listener with or without Basic auth."""
        from urllib.parse import quote

        creds = f"{quote(USER, safe='')}:{quote(PASSWORD, safe='')}@" if auth else ""
        return f"https://{creds}{host}:{self.ports[3 if auth else 2]}"


class Tinyproxy(_OwnedDirProxy):
    name = "tinyproxy"
    ports_needed = 1

    def _command(self) -> list[str]:
        d = self.workdir
        (d / "tp.conf").write_text(f"""
User nobody
Group nogroup
Port {self.ports[0]}
Listen 127.0.0.1
LogFile "{d}/tp.log"
LogLevel Connect
Allow 127.0.0.1
DisableViaHeader Yes
""")
        self._chown()
        return [self.binary, "-d", "-c", str(d / "tp.conf")]

    def connections(self) -> int:
        """Client connections accepted so far (the readiness probe excluded)."""
        path = self.workdir / "tp.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return max(0, text.count("Connect (file descriptor") - self._probes)

    _probes = 1  # start() connects once to see the port open


class Microsocks(ServerProcess):
    name = "microsocks"
    ports_needed = 1
    stop_grace = 0.2

    def __init__(
        self, workdir: Path, ca: trustme.CA, binary: str, auth: bool = False, host: str = ""
    ) -> None:
        super().__init__(workdir, binary=binary, ca=ca)
        self.auth = auth
        if host:
            self.host = host  # "::1": listen on IPv6 loopback

    def _command(self) -> list[str]:
        argv = [self.binary, "-i", self.host, "-p", str(self.ports[0]), "-b", "127.0.0.1"]
        if self.auth:
            argv += ["-u", USER, "-P", PASSWORD]
        return argv

    def _parse_access_log(self) -> list[AccessEntry]:
        return []

    def proxy_url(self, scheme: str = "socks5h", auth: bool = False) -> str:
        from urllib.parse import quote

        creds = f"{quote(USER, safe='')}:{quote(PASSWORD, safe='')}@" if auth else ""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{creds}{host}:{self.ports[0]}"

    def tunnels(self) -> int:
        """Tunnels opened so far (microsocks prints a line per client it connected)."""
        return sum(1 for line in self.output().splitlines() if "client[" in line)


class Dante(ServerProcess):
    name = "dante"
    ports_needed = 1
    stop_grace = 2.5  # SIGTERM stops its children in about 2 s

    def _command(self) -> list[str]:
        d = self.workdir
        (d / "danted.conf").write_text(f"""
logoutput: {d}/danted.log
internal: 127.0.0.1 port = {self.ports[0]}
external: 127.0.0.1
socksmethod: none
clientmethod: none
user.privileged: root
user.unprivileged: nobody
client pass {{ from: 127.0.0.0/8 to: 0.0.0.0/0 log: connect disconnect }}
socks pass  {{ from: 127.0.0.0/8 to: 127.0.0.0/8 log: connect disconnect }}
socks block {{ from: 0.0.0.0/0 to: 0.0.0.0/0 log: connect error }}
""")
        return [self.binary, "-f", str(d / "danted.conf"), "-p", str(d / "danted.pid")]

    def _parse_access_log(self) -> list[AccessEntry]:
        return []

    def proxy_url(self, scheme: str = "socks4a") -> str:
        return f"{scheme}://{self.host}:{self.ports[0]}"

    def tunnels(self) -> int:
        """SOCKS tunnels opened so far (one ``socks ... pass`` connect line each)."""
        path = self.workdir / "danted.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return sum(1 for line in text.splitlines() if "pass(1): tcp/connect [" in line)
