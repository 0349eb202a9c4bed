"""Part 5: the rollout fragment served by gunicorn to concurrent clients over loopback; and what
part 6 (bench/load.py) shares with it: starting and stopping processes in their own process
groups, gunicorn as production runs it, and a small closed-loop HTTP/1.1 load generator.

The load generator is asyncio on plain sockets: each client sends a request, reads the whole
response, and sends the next at once (a closed loop: never more requests in flight than
clients). A connection is kept when the server keeps it (gunicorn's default sync worker closes
it after every response, so those clients reconnect, as browsers would). Everything it sends goes
to 127.0.0.1, for a fixed number of seconds, and stops by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bench.run import Line, Target

BASE_DIR = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
GUNICORN_WORKERS = 4
REQUEST_TIMEOUT = 30.0
START_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0

CLIENTS = 50
SECONDS = 30.0
QUICK_SECONDS = 10.0
SINGLE_CLIENT_SECONDS = 5.0


def progress(message: str) -> None:
    """As `bench.rollouts.progress`; this module is imported before Django is set up (by
    `python -m bench.load`), so it must not import that one (nor anything using the models)."""
    print(f"[bench] {message}", file=sys.stderr, flush=True)


# Processes


def exit_on_sigterm() -> None:
    """SIGTERM ends this process as Ctrl-C would: through every `finally`, so that what it
    started is stopped too (the default action would leave it running)."""
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))


def free_port() -> int:
    """A port nothing listens on now (the kernel's pick); the caller binds it at once."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def start_process(
    command: Sequence[str], env: Mapping[str, str], log: Path
) -> subprocess.Popen[bytes]:
    """`command` in its own session (so its process group can be stopped as one), output to
    `log`."""
    with log.open("ab") as output:
        return subprocess.Popen(
            list(command),
            cwd=BASE_DIR,
            env=dict(env),
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process's group (its workers, work horses and threads too); SIGKILL the
    group if it has not gone after STOP_TIMEOUT."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    # The group may outlive its leader (a work horse finishing a job): make sure it is gone.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


def gunicorn_command(port: int, workers: int = GUNICORN_WORKERS) -> list[str]:
    """gunicorn as production runs it: default (sync) workers, no access log."""
    return [
        sys.executable, "-m", "gunicorn", "tinystacks.wsgi",
        "--workers", str(workers),
        "--bind", f"{HOST}:{port}",
        "--log-level", "warning",
    ]  # fmt: skip


def production_env(base: Mapping[str, str], secret_key: str) -> dict[str, str]:
    """DEBUG off, with what plain http on loopback needs: the host allowed and no redirect to
    https. The session cookie's Secure flag does not matter: the clients send the cookie
    themselves."""
    return dict(base) | {
        "DJANGO_SETTINGS_MODULE": "tinystacks.settings",
        "DEBUG": "0",
        "SECRET_KEY": secret_key,
        "ALLOWED_HOSTS": HOST,
        "SECURE_SSL_REDIRECT": "0",
    }


def wait_until_answering(
    port: int, path: str, process: subprocess.Popen[bytes], log: Path, timeout: float
) -> None:
    """Until `path` answers (any status) or the process exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited before it answered; see {log}")
        with contextlib.suppress(OSError), socket.create_connection((HOST, port), 1) as conn:
            conn.sendall(f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
            if conn.recv(12).startswith(b"HTTP/"):
                return
        time.sleep(0.2)
    raise RuntimeError(f"nothing answered on {HOST}:{port} within {timeout:g} s; see {log}")


# The load generator


@dataclass(frozen=True)
class Request:
    kind: str  # the row it is counted in
    method: str
    path: str
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""

    def encode(self, port: int) -> bytes:
        lines = [f"{self.method} {self.path} HTTP/1.1", f"Host: {HOST}:{port}"]
        lines += [f"{name}: {value}" for name, value in self.headers.items()]
        if self.body or self.method in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {len(self.body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + self.body


@dataclass(frozen=True)
class Sample:
    kind: str
    at: float  # when it was sent, seconds since the load began
    ms: float
    status: int  # 0: no HTTP answer (connection refused or reset, timeout)
    error: str = ""

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


class Connection:
    """One client's HTTP/1.1 connection to 127.0.0.1:port, reopened when the server closes it."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(OSError):
                await self.writer.wait_closed()
        self.reader = self.writer = None

    async def exchange(self, request: Request) -> tuple[int, bytes]:
        """Send `request`, read its whole response. A kept connection the server closed before
        answering (idle keep-alive timeout) is retried once on a new one, as HTTP clients do."""
        for attempt in (1, 2):
            reused = self.writer is not None
            if self.writer is None:
                self.reader, self.writer = await asyncio.open_connection(HOST, self.port)
            assert self.reader is not None and self.writer is not None
            self.writer.write(request.encode(self.port))
            await self.writer.drain()
            status_line = await self.reader.readline()
            if status_line:
                return await self._read_rest(status_line)
            await self.close()
            if not reused or attempt == 2:
                raise ConnectionResetError("the server closed the connection without answering")
        raise AssertionError("unreachable")

    async def _read_rest(self, status_line: bytes) -> tuple[int, bytes]:
        assert self.reader is not None
        status = int(status_line.split()[1])
        headers: dict[str, str] = {}
        while (line := await self.reader.readline()) not in (b"\r\n", b"\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        if headers.get("transfer-encoding", "").lower() == "chunked":
            body = await self._read_chunked()
        elif "content-length" in headers:
            body = await self.reader.readexactly(int(headers["content-length"]))
        else:
            body = await self.reader.read()
            headers["connection"] = "close"
        if headers.get("connection", "").lower() == "close":
            await self.close()
        return status, body

    async def _read_chunked(self) -> bytes:
        assert self.reader is not None
        body = b""
        while size := int((await self.reader.readline()).split(b";")[0], 16):
            body += await self.reader.readexactly(size)
            await self.reader.readline()
        while await self.reader.readline() not in (b"\r\n", b"\n", b""):
            pass  # trailers
        return body


async def send(connection: Connection, request: Request, began: float) -> tuple[Sample, bytes]:
    """One request, timed from the first byte sent (or the connect) to the last byte read."""
    start = time.perf_counter()
    try:
        async with asyncio.timeout(REQUEST_TIMEOUT):
            status, body = await connection.exchange(request)
        error = ""
    except TimeoutError:
        status, body, error = 0, b"", f"timeout after {REQUEST_TIMEOUT:g} s"
        await connection.close()
    except (OSError, asyncio.IncompleteReadError, ValueError, IndexError) as failure:
        status, body, error = 0, b"", f"{type(failure).__name__}: {failure}"
        await connection.close()
    ms = (time.perf_counter() - start) * 1000
    if status >= 500 and not error:
        error = body[:200].decode("utf-8", "replace")
    return Sample(request.kind, start - began, ms, status, error), body


async def client_loop(
    port: int, next_request: Callable[[], Request], began: float, until: float
) -> list[Sample]:
    """A closed loop: the next request as soon as the previous answer is in, until `until`."""
    connection = Connection(port)
    samples: list[Sample] = []
    try:
        while time.perf_counter() < until:
            sample, _ = await send(connection, next_request(), began)
            samples.append(sample)
    finally:
        await connection.close()
    return samples


async def closed_loop(
    port: int,
    clients: int,
    seconds: float,
    pick: Callable[[int], Callable[[], Request]],
    side: Callable[[float], Awaitable[Any]] | None = None,
) -> tuple[list[Sample], float, Any]:
    """`clients` closed loops for `seconds` (client i asks for what `pick(i)` makes), with an
    optional `side` coroutine (given the start time) run beside them. Returns every sample, the
    seconds the loops really ran, and what `side` returned."""
    began = time.perf_counter()
    until = began + seconds
    loops = [client_loop(port, pick(i), began, until) for i in range(clients)]
    extra = [side(began)] if side is not None else []
    results = await asyncio.gather(*loops, *extra)
    elapsed = time.perf_counter() - began
    samples = [s for result in results[:clients] for s in result]
    return samples, elapsed, results[clients] if side is not None else None


@dataclass
class LoadRow:
    """Requests of one kind under load: how many, how fast, how many failed and why."""

    part: int
    scenario: str
    tool: str
    clients: int
    seconds: float
    requests: int
    statuses: dict[str, int]
    errors: int  # anything but a 2xx answer: 5xx, connection errors, timeouts, 4xx
    error_samples: list[str]
    ms: list[float]
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict[str, Any]:
        from bench.harness import percentile

        data = asdict(self)
        data["ms"] = {
            "p50": round(percentile(self.ms, 50), 3),
            "p95": round(percentile(self.ms, 95), 3),
            "p99": round(percentile(self.ms, 99), 3),
            "max": round(max(self.ms, default=float("nan")), 3),
        }
        return data | {"requests_per_second": round(self.rate, 1)}


def summarise(
    samples: Sequence[Sample], *, part: int, scenario: str, tool: str, clients: int,
    seconds: float,
) -> LoadRow:  # fmt: skip
    statuses = Counter(str(s.status) if s.status else "no answer" for s in samples)
    failed = [s for s in samples if not s.ok]
    return LoadRow(
        part=part,
        scenario=scenario,
        tool=tool,
        clients=clients,
        seconds=round(seconds, 2),
        requests=len(samples),
        statuses=dict(sorted(statuses.items())),
        errors=len(failed),
        error_samples=sorted({f"{s.status or 'no answer'} {s.error}".strip() for s in failed})[:10],
        ms=[round(s.ms, 3) for s in samples],
    )


# Part 5


def session_cookie(user: Any) -> str:
    """A signed-in session for `user`, made in the database as `login()` makes it; the value of
    the Cookie header that carries it."""
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore

    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    return f"{settings.SESSION_COOKIE_NAME}={session.session_key}"


def fragment_request(path: str, cookie: str, kind: str = "rollout fragment") -> Request:
    return Request(kind, "GET", path, {"Cookie": cookie, "HX-Request": "true"})


def always(request: Request) -> Callable[[int], Callable[[], Request]]:
    """Every client asks for `request`, again and again."""
    return lambda client: lambda: request


def part_five(var_dir: Path, quick: bool = False) -> list[LoadRow]:
    """The rollout fragment of `web` in each of part 4's datasets (made now if part 4 did not
    run; its rollout in flight, as when browsers poll it), served by gunicorn (4 workers, DEBUG
    off) on the benchmark's database: one client for a few seconds (latency without queueing),
    then CLIENTS clients for SECONDS."""
    from django.conf import settings

    from bench import pages

    cookies = {}
    for apps, releases in pages.SIZES:
        owner = pages.latest_dataset_owner(apps)
        if owner is None:
            progress(f"part 5: making {apps:,} apps and {releases:,} releases in bulk")
            owner = pages.build_dataset(apps, releases).owner
        cookies[releases] = session_cookie(owner)
    path = pages.rollout_fragment_path()
    port = free_port()
    log = var_dir / "gunicorn-part5.log"
    env = production_env(os.environ, settings.SECRET_KEY)
    progress(f"part 5: gunicorn ×{GUNICORN_WORKERS} on {HOST}:{port}, DEBUG off")
    server = start_process(gunicorn_command(port), env, log)
    rows = []
    tool = f"gunicorn ×{GUNICORN_WORKERS} (sync), DEBUG=0"
    seconds = QUICK_SECONDS if quick else SECONDS
    try:
        wait_until_answering(port, "/sign-in/", server, log, START_TIMEOUT)
        for releases, cookie in cookies.items():
            request = fragment_request(path, cookie)
            # Warm every worker (imports, templates, connection, caches) before the clock runs.
            asyncio.run(closed_loop(port, GUNICORN_WORKERS * 2, 2.0, always(request)))
            for clients, duration in ((1, SINGLE_CLIENT_SECONDS), (CLIENTS, seconds)):
                progress(
                    f"part 5: {clients} client(s) × {duration:g} s on the rollout fragment "
                    f"of an app with {releases:,} releases"
                )
                samples, elapsed, _ = asyncio.run(
                    closed_loop(port, clients, duration, always(request))
                )
                rows.append(
                    summarise(
                        samples, part=5, tool=tool, clients=clients, seconds=elapsed,
                        scenario=f"rollout fragment over HTTP, {releases:,} releases: "
                        f"{clients} client{'s' if clients > 1 else ''} × {duration:g} s",
                    )
                )  # fmt: skip
                rows[-1].extra["path"] = path
                rows[-1].extra["load_average"] = [round(x, 2) for x in os.getloadavg()]
    finally:
        stop_process(server)
    for row in rows:
        row.extra["server_log_tail"] = log_tail(log)
    return rows


def log_tail(log: Path, lines: int = 20) -> list[str]:
    try:
        return log.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return []


# The table


def load_line(row: dict[str, Any]) -> Line:
    """A LoadRow (as a dict: part 6 reads it back from JSON) as a row of the benchmark table."""
    from bench.run import Line

    statuses = ", ".join(f"{status} ×{n:,}" for status, n in row["statuses"].items())
    ms = row["ms"]
    return Line(
        part=str(row["part"]),
        scenario=row["scenario"],
        tool=row["tool"],
        outcome=f"{row['requests']:,} requests: {statuses or 'none'}",
        calls="—",
        follow="—",
        wall="—",
        latency="—",
        rate=f"{row['requests_per_second']:,.1f}",
        ms=" / ".join(milliseconds(ms[key]) for key in ("p50", "p95", "p99")),
    )


def milliseconds(value: float) -> str:
    if math.isnan(value):
        return "—"
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}"


def no_errors(row: dict[str, Any]) -> Target:
    """Every request answered 2xx: no 5xx, no connection error or timeout, no other status."""
    from bench.run import Target

    errors = row["errors"]
    detail = f"{errors} errors in {row['requests']:,} requests"
    if errors:
        share = errors / row["requests"] if row["requests"] else 1.0
        detail += f": missed by {errors} ({share:.1%}: {'; '.join(row['error_samples'][:3])})"
    return Target(f"part {row['part']}: {row['scenario']}: 0 errors", errors == 0, detail)


def lines(rows: Sequence[LoadRow]) -> tuple[list[Line], list[Target]]:
    """Part 5's rows, each with its target: no request failed."""
    out, targets = [], []
    for row in rows:
        data = row.as_dict()
        line = load_line(data)
        target = no_errors(data)
        line.target = target.cell()
        out.append(line)
        targets.append(target)
    return out, targets
