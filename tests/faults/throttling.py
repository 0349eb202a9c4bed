"""Fault injection for tests: AWS throttling on a share of calls, through the clients' hook."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from botocore.awsrequest import AWSResponse, HTTPHeaders

from deployments.aws import clients


class Body:
    def __init__(self, content: bytes) -> None:
        self.content = content

    def stream(self) -> Iterator[bytes]:
        yield self.content


def throttling_response(request: Any, service: str) -> AWSResponse:
    """What AWS answers when it throttles, in the wire format of `service`'s protocol."""
    if "X-Amz-Target" in request.headers:
        body = b'{"__type": "ThrottlingException", "message": "Rate exceeded"}'
    elif service == "ec2":
        body = (
            b"<Response><Errors><Error><Code>RequestLimitExceeded</Code>"
            b"<Message>Request limit exceeded.</Message></Error></Errors>"
            b"<RequestID>throttled</RequestID></Response>"
        )
    else:
        body = (
            b"<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code>"
            b"<Message>Rate exceeded</Message></Error><RequestId>throttled</RequestId>"
            b"</ErrorResponse>"
        )
    return AWSResponse(request.url, 400, HTTPHeaders(), Body(body))


@contextmanager
def throttled(share: float, seed: int = 30) -> Iterator[list[str]]:
    """Throttle `share` of the AWS calls made inside; yields the services throttled, in order."""
    chance = random.Random(seed)
    hits: list[str] = []
    this_thread = threading.get_ident()  # only the test's own calls: other threads stay clean

    def throttle(request: Any, event_name: str, **kwargs: Any) -> AWSResponse | None:
        if threading.get_ident() == this_thread and chance.random() < share:
            service = event_name.split(".")[1]
            hits.append(service)
            return throttling_response(request, service)
        return None

    remove = clients.add_client_hook("before-send", throttle)
    try:
        yield hits
    finally:
        remove()
