"""The worker API over HTTP (standard library only): lease, heartbeat, complete, fail.

Each thread keeps one keep-alive connection to the server, so a heartbeat every few seconds
costs no new TCP (or TLS) handshake.
"""

from __future__ import annotations

import http.client
import json
import threading
import urllib.parse
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

from .errors import ApiError, LeaseLost, NetworkError

USER_AGENT = "edgetask-worker-python/0.1.0"
#: Seconds a request may take beyond the time the server is asked to hold it.
REQUEST_SLACK_S = 15.0


@dataclass
class Lease:
    """A task leased to this worker, as ``POST /v1/work/lease`` returned it."""

    task_id: str
    type: str
    input: Any
    attempt: int
    priority: str
    token: str
    expires_at: str
    heartbeat_s: float


@dataclass
class HeartbeatAnswer:
    expires_at: str
    cancel_requested: bool


class WorkApi:
    """Calls edgetask's ``/v1/work`` routes. Raises :class:`NetworkError` when the server cannot
    be reached, :class:`LeaseLost` on a 409 ``lease_lost``, :class:`ApiError` on any other error."""

    def __init__(self, url: str, api_key: Optional[str] = None, timeout_s: float = 20.0) -> None:
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ValueError(f"url must be http(s)://host[:port][/prefix], got {url!r}")
        self._https = parsed.scheme == "https"
        self._host = parsed.hostname
        self._port = parsed.port
        self._prefix = parsed.path.rstrip("/")
        self._api_key = api_key or None
        self._timeout_s = timeout_s
        self._local = threading.local()

    # ---- the routes ----

    def lease(self, types: List[str], worker_id: str, wait_s: float) -> Optional[Lease]:
        """Long-polls for the next task of ``types``; None when nothing came within ``wait_s``."""
        body = {"types": types, "worker_id": worker_id, "wait_s": wait_s}
        answer = self._call("POST", "/v1/work/lease", body, timeout_s=wait_s + REQUEST_SLACK_S)
        if answer is None:
            return None
        task, lease = answer.get("task"), answer.get("lease")
        if not isinstance(task, dict) or not isinstance(lease, dict):
            raise ApiError(200, "bad_answer", f"lease answer without task and lease: {answer!r:.200}")
        return Lease(
            task_id=str(task["id"]),
            type=str(task["type"]),
            input=task.get("input"),
            attempt=int(task.get("attempt", 1)),
            priority=str(task.get("priority", "normal")),
            token=str(lease["token"]),
            expires_at=str(lease["expires_at"]),
            heartbeat_s=float(lease["heartbeat_s"]),
        )

    def heartbeat(
        self,
        task_id: str,
        token: str,
        progress: Optional[Dict[str, Any]] = None,
        timeout_s: Optional[float] = None,
    ) -> HeartbeatAnswer:
        body: Dict[str, Any] = {"token": token}
        if progress is not None:
            body["progress"] = progress
        answer = self._call("POST", f"/v1/work/{_quote(task_id)}/heartbeat", body, timeout_s=timeout_s) or {}
        return HeartbeatAnswer(
            expires_at=str(answer.get("expires_at", "")),
            cancel_requested=bool(answer.get("cancel_requested", False)),
        )

    def complete(self, task_id: str, token: str, output_json: str) -> Dict[str, Any]:
        """``output_json`` is the output already serialised (the caller checked it is JSON)."""
        raw = '{"token":%s,"output":%s}' % (json.dumps(token), output_json)
        return self._call("POST", f"/v1/work/{_quote(task_id)}/complete", raw) or {}

    def fail(self, task_id: str, token: str, code: str, message: str, retryable: bool) -> Dict[str, Any]:
        body = {"token": token, "error": {"code": code, "message": message}, "retryable": retryable}
        return self._call("POST", f"/v1/work/{_quote(task_id)}/fail", body) or {}

    # ---- HTTP ----

    def _connection(self, timeout_s: float) -> http.client.HTTPConnection:
        conn: Optional[http.client.HTTPConnection] = getattr(self._local, "conn", None)
        if conn is None:
            cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
            conn = cls(self._host, self._port, timeout=timeout_s)
            self._local.conn = conn
        conn.timeout = timeout_s
        if conn.sock is not None:
            conn.sock.settimeout(timeout_s)
        return conn

    def close(self) -> None:
        """Closes this thread's connection (other threads' close when they end)."""
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            conn.close()

    def _call(self, method: str, path: str, body: Any, timeout_s: Optional[float] = None) -> Optional[Dict[str, Any]]:
        data = (body if isinstance(body, str) else json.dumps(body, allow_nan=False)).encode("utf-8")
        headers = {
            "content-type": "application/json",
            "accept": "application/json",
            "user-agent": USER_AGENT,
        }
        if self._api_key:
            headers["authorization"] = f"Bearer {self._api_key}"
        conn = self._connection(timeout_s or self._timeout_s)
        try:
            conn.request(method, self._prefix + path, body=data, headers=headers)
            response = conn.getresponse()
            raw = response.read()
        except (OSError, http.client.HTTPException) as e:
            # The connection may be half-used: start the next request on a fresh one.
            self.close()
            raise NetworkError(f"{method} {path}: {type(e).__name__}: {e}") from e
        if response.getheader("connection", "").lower() == "close":
            self.close()
        if response.status == 204:
            return None
        parsed = _json_or_none(raw)
        if response.status >= 400:
            raise _api_error(response.status, parsed, raw, response.getheader("retry-after"))
        if not isinstance(parsed, dict):
            if response.status >= 200 and response.status < 300 and not raw:
                return {}
            raise ApiError(response.status, "bad_answer", f"not a JSON object: {raw[:200]!r}")
        return parsed


def _quote(task_id: str) -> str:
    return urllib.parse.quote(task_id, safe="")


def _json_or_none(raw: bytes) -> Any:
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None


def _api_error(status: int, parsed: Any, raw: bytes, retry_after: Optional[str]) -> ApiError:
    error = parsed.get("error") if isinstance(parsed, dict) else None
    if isinstance(error, dict):
        code = str(error.get("code", "error"))
        message = str(error.get("message", ""))
        details = error.get("details")
    else:
        code, message, details = "http_error", raw[:200].decode("utf-8", "replace"), None
    wait: Optional[float] = None
    if retry_after is not None:
        try:
            wait = max(0.0, float(retry_after))
        except ValueError:
            wait = None
    cls = LeaseLost if status == 409 and code == "lease_lost" else ApiError
    return cls(status, code, message, details, wait)
