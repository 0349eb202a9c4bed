"""The sandbox over HTTP: moto's server app, wrapped for the /_sandbox/* endpoints and per-action
request counters, plus a thread that ticks the simulator. `manage.py sandbox` and the server tests
both run it through `Sandbox`.

Requests and ticks take turns under one lock: moto's backends are not made for concurrent writers,
and a simulated AWS has no need to be fast.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qs

import moto
from moto.core.base_backend import BackendDict
from moto.core.model_instances import reset_model_data
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import BaseWSGIServer, make_server

from deployments.sandbox import LABEL, autoscaling, propagation
from deployments.sandbox.simulator import Simulator

logger = logging.getLogger(__name__)

HOST = "127.0.0.1"  # a sandbox with dummy credentials must not be reachable from the network
StartResponse = Callable[..., Any]
CREDENTIAL_SCOPE = re.compile(r"Credential=[^/,]+/\d+/[^/]+/([^/]+)/")
RPC_V2_OPERATION = re.compile(r"^/service/[^/]+/operation/([^/?]+)")
SERVICE_ALIASES = {"monitoring": "cloudwatch"}  # CloudWatch signs as "monitoring"


class QuietRequestHandler(MotoRequestHandler):
    """No line per request: the dashboard polls, and /_sandbox/stats counts the calls."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


class Sandbox:
    def __init__(
        self,
        port: int = 4566,
        tick_seconds: float = 1.0,
        iam_propagation_seconds: float = propagation.DEFAULT_SECONDS,
    ) -> None:
        self.port = port
        self.tick_seconds = tick_seconds
        self.iam_propagation_seconds = iam_propagation_seconds
        self.requests: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._paused = threading.Event()
        self._threads: list[threading.Thread] = []
        self._server: BaseWSGIServer | None = None
        self._moto_app = DomainDispatcherApplication(create_backend_app)
        self._previous_managed_policies: str | None = None
        self.simulator = Simulator(tick_seconds=tick_seconds)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self) -> None:
        # AWS-managed IAM policies (AmazonEC2ContainerServiceforEC2Role, …) exist only if asked for
        # before moto creates its IAM backend.
        self._previous_managed_policies = os.environ.get("MOTO_IAM_LOAD_MANAGED_POLICIES")
        os.environ["MOTO_IAM_LOAD_MANAGED_POLICIES"] = "true"
        propagation.settings.seconds = self.iam_propagation_seconds
        self._server = make_server(
            HOST, self.port, self, threaded=True, request_handler=QuietRequestHandler
        )
        self.port = self._server.server_port
        self._stopping.clear()
        self._threads = [
            threading.Thread(target=self._server.serve_forever, name="sandbox-http", daemon=True),
            threading.Thread(target=self._tick_forever, name="sandbox-ticker", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        for thread in self._threads:
            thread.join()
        if self._previous_managed_policies is None:
            os.environ.pop("MOTO_IAM_LOAD_MANAGED_POLICIES", None)
        else:
            os.environ["MOTO_IAM_LOAD_MANAGED_POLICIES"] = self._previous_managed_policies

    def reset(self) -> None:
        """Forget every AWS resource, the simulator's state and the request counters."""
        with self._lock:
            BackendDict.reset()
            reset_model_data()
            self.requests.clear()

    @contextmanager
    def paused(self) -> Iterator[None]:
        """The ticker stands still: time moves only by `step()` (tests step the simulation)."""
        self._paused.set()
        try:
            yield
        finally:
            self._paused.clear()

    def step(self) -> None:
        with self._lock:
            self.simulator.tick()

    def _tick_forever(self) -> None:
        while not self._stopping.wait(self.tick_seconds):
            if self._paused.is_set():
                continue
            with self._lock:
                try:
                    self.simulator.tick()
                except Exception:  # one bad tick must not stop the simulation
                    logger.exception("sandbox tick failed")

    # WSGI

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/_sandbox" or path.startswith("/_sandbox/"):
            status, body = self._control(environ["REQUEST_METHOD"], path, environ)
            payload = json.dumps(body).encode()
            start_response(status, [("Content-Type", "application/json")])
            return [payload]
        with self._lock:
            self.requests[request_action(environ)] += 1
            return list(self._moto_app(environ, start_response))

    def _control(self, method: str, path: str, environ: dict[str, Any]) -> tuple[str, Any]:
        endpoint = path.removeprefix("/_sandbox").strip("/")
        if method == "GET" and endpoint in ("", "health"):
            ticks = self.simulator.ticks
            return "200 OK", {"sandbox": LABEL, "moto": moto.__version__, "ticks": ticks}
        if method == "GET" and endpoint == "stats":
            with self._lock:
                return "200 OK", dict(sorted(self.requests.items()))
        if method == "POST" and endpoint == "reset":
            self.reset()
            return "200 OK", {"reset": True}
        if method == "POST" and endpoint == "load":
            return self._set_load(_json_body(environ))
        return "404 Not Found", {"error": f"no such sandbox endpoint: {method} {path}"}

    def _set_load(self, body: Any) -> tuple[str, Any]:
        try:
            cluster, name, cpu = str(body["cluster"]), str(body["service"]), float(body["cpu"])
        except (KeyError, TypeError, ValueError):
            return "400 Bad Request", {"error": 'expected JSON {"cluster", "service", "cpu"}'}
        if not 0 <= cpu <= 100:
            return "400 Bad Request", {"error": "cpu is a percentage between 0 and 100"}
        with self._lock:
            try:
                service = autoscaling.set_cpu(cluster, name, cpu, body.get("region"))
            except LookupError as error:
                return "404 Not Found", {"error": str(error)}
            return "200 OK", {
                "cluster": cluster,
                "service": name,
                "region": service.region_name,
                "cpu": cpu,
                "runningCount": service.running_count,
            }


def request_action(environ: dict[str, Any]) -> str:
    """ "service:Action" of an AWS API request: the service from the SigV4 credential scope, the
    action from X-Amz-Target (JSON protocols), the path (RPC v2 CBOR) or the Action (query)."""
    scope = CREDENTIAL_SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
    service = scope[1] if scope else "unknown"
    service = SERVICE_ALIASES.get(service, service)
    if target := environ.get("HTTP_X_AMZ_TARGET"):
        return f"{service}:{target.rsplit('.', 1)[-1]}"
    if operation := RPC_V2_OPERATION.match(environ.get("PATH_INFO", "")):
        return f"{service}:{operation[1]}"
    fields = parse_qs(environ.get("QUERY_STRING", ""))
    if environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded"):
        fields.update(parse_qs(_read_body(environ).decode("utf-8", "replace")))
    return f"{service}:{fields.get('Action', ['unknown'])[0]}"


def _read_body(environ: dict[str, Any]) -> bytes:
    """Read the request body and put it back for moto to read again."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    body: bytes = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(body)
    return body


def _json_body(environ: dict[str, Any]) -> Any:
    try:
        return json.loads(_read_body(environ) or b"{}")
    except json.JSONDecodeError:
        return None
