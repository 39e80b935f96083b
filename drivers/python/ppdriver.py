"""The poolproof driver protocol (v1) for Python drivers: the plumbing every
driver shares, so that each driver file shows only its client.

A driver is a child process: poolproof writes one JSON object per line on
stdin (init, call, close, shutdown) and reads one per line on stdout
(init_ok, result, close_ok). Calls arrive concurrently and are answered in
any order, each on its own thread (kept between calls), so a slow call never
delays another. stdout carries protocol lines only (sys.stdout is pointed at
stderr, so a stray print cannot corrupt it); logs go to stderr. See
docs/driver-protocol.md.

A driver implements:

    class Driver:
        name, library, version        # for init_ok
        def init(self, services, contract): ...   # services: list of Service
        def call(self, call): ...      # returns Response or raises
        def close(self): ...           # release idle pooled connections
        def classify(self, exc): ...   # one of CLASSES

and runs serve(Driver()).
"""

import base64
import hashlib
import json
import logging
import os
import queue
import re
import socket
import ssl
import sys
import threading
import http.client
from dataclasses import dataclass, field

PROTOCOL = 1

CLASSES = ("timeout", "connect", "reset", "eof", "tls", "pool_exhausted", "circuit_open", "canceled", "other")

_out = sys.stdout.buffer
sys.stdout = sys.stderr  # nothing but protocol lines reaches the real stdout
_out_lock = threading.Lock()

log = logging.getLogger("driver")


@dataclass
class Service:
    name: str
    base_url: str
    ca_file: str  # "" when the service is plain HTTP


@dataclass
class Call:
    id: int
    service: str
    method: str
    url: str
    headers: dict  # name -> one string (repeated values joined with ", ")
    body: bytes  # None when the call has no body


@dataclass
class Response:
    status: int
    headers: list  # (name, value) pairs as received, repeats kept
    body: bytes  # exactly the bytes read


def send(msg):
    """Writes one protocol line; whole lines only, from any thread."""
    line = json.dumps(msg, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"
    with _out_lock:
        _out.write(line)
        _out.flush()


def canonical(name):
    """Go's canonical header form (textproto.CanonicalMIMEHeaderKey):
    x-body-digest -> X-Body-Digest. HTTP/2 delivers names in lower case."""
    return "-".join(p[:1].upper() + p[1:].lower() for p in name.split("-"))


def result_of(call_id, resp):
    headers = {}
    for name, value in resp.headers:
        headers.setdefault(canonical(name), []).append(value)
    return {
        "type": "result",
        "id": call_id,
        "status": resp.status,
        "headers": headers,
        "body_len": len(resp.body),
        "body_sha256": hashlib.sha256(resp.body).hexdigest(),
    }


def error_of(call_id, cls, exc):
    message = f"{type(exc).__module__}.{type(exc).__qualname__}: {exc}"
    return {"type": "result", "id": call_id, "error": {"class": cls, "message": message[:2000]}}


def causes(exc):
    """The exception and everything it wraps: __cause__, __context__, a
    .reason (urllib3's MaxRetryError) and exceptions among its args
    (requests wraps urllib3's errors there), depth first, each once."""
    seen, stack, out = set(), [exc], []
    while stack:
        e = stack.pop()
        if e is None or id(e) in seen or not isinstance(e, BaseException):
            continue
        seen.add(id(e))
        out.append(e)
        stack.extend(reversed([getattr(e, "reason", None), e.__cause__, e.__context__,
                               *[a for a in e.args if isinstance(a, BaseException)]]))
    return out


def classify_builtin(chain):
    """The class named by the standard library's exceptions in a chain, or
    None. Timeouts first: a TLS handshake that times out is a timeout."""
    if any(isinstance(e, (socket.timeout, TimeoutError)) for e in chain):
        return "timeout"
    # The peer closed the connection early (a FIN, not a reset): before the
    # response, in the middle of the body, or in the middle of TLS, which is
    # not a certificate problem.
    if any(isinstance(e, (http.client.RemoteDisconnected, http.client.IncompleteRead,
                          ssl.SSLEOFError, ssl.SSLZeroReturnError)) for e in chain):
        return "eof"
    if any(isinstance(e, ssl.SSLError) for e in chain):
        return "tls"
    if any(isinstance(e, (ConnectionRefusedError, socket.gaierror)) for e in chain):
        return "connect"
    if any(isinstance(e, (ConnectionResetError, BrokenPipeError, ConnectionAbortedError)) for e in chain):
        return "reset"
    return None


def classify_requests(exc, pool_exhausted=(), timeouts=()):
    """The class of an exception raised through requests and urllib3.
    pool_exhausted and timeouts are the exception types (beyond urllib3's
    and requests') that mean a call found no free connection, or ran out of
    time. requests is imported here, so that drivers of other libraries do
    not need it."""
    import requests
    from urllib3.exceptions import EmptyPoolError, NewConnectionError, ProtocolError
    from urllib3.exceptions import TimeoutError as Urllib3Timeout

    chain = causes(exc)
    if any(isinstance(e, (EmptyPoolError, *pool_exhausted)) for e in chain):
        return "pool_exhausted"
    # NewConnectionError is a subclass of urllib3's ConnectTimeoutError:
    # a refused connection is not a timeout.
    if any(isinstance(e, NewConnectionError) for e in chain):
        return classify_builtin(chain) or "connect"
    if any(isinstance(e, (*timeouts, requests.Timeout, Urllib3Timeout)) for e in chain):
        return "timeout"
    if any(isinstance(e, requests.exceptions.SSLError) for e in chain):
        return "tls"
    builtin = classify_builtin(chain)
    if builtin:
        return builtin
    if any(isinstance(e, (ProtocolError, requests.exceptions.ChunkedEncodingError)) for e in chain):
        return "reset"
    return "other"


_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")


def seconds(v):
    """A contract duration in seconds: a number of nanoseconds (init's JSON)
    or a Go duration string such as "250ms" or "1m30s" (contract files)."""
    if v is None:
        return 0.0
    if isinstance(v, (int, float)):
        return v / 1e9
    s = str(v).strip()
    if s in ("0", ""):
        return 0.0
    parts = _DURATION.findall(s)
    if not parts or "".join(n + u for n, u in parts) != s:
        raise ValueError(f"not a duration: {v!r} (want e.g. \"250ms\")")
    return sum(float(n) * _UNITS[u] for n, u in parts)


def load_contract(path):
    """A Profile file ({"default": {...}, "services": {...}}) as
    {service: contract dict}, with "default" under the key None."""
    with open(path) as f:
        profile = json.load(f)
    out = {None: profile.get("default", {})}
    out.update(profile.get("services", {}))
    return out


def contract_for(profile, service):
    return profile.get(service, profile.get(None, {}))


def warn_if_tighter(given, kept):
    """Logs, per service, where the contract poolproof holds the driver to
    (given, from init) is tighter than the one the driver keeps (kept, its own
    file): the checks will hold it to the tighter one."""
    if not given:
        return
    given = {None: given.get("default", {}), **(given.get("services") or {})}
    for svc in sorted({k for k in kept if k}):
        g, k = contract_for(given, svc), contract_for(kept, svc)
        for fieldname, tighter in (("max_conns", lambda a, b: a < b), ("max_attempts", lambda a, b: a < b),
                                   ("request_timeout", lambda a, b: seconds(a) < seconds(b)),
                                   ("pool_wait", lambda a, b: seconds(a) < seconds(b))):
            if g.get(fieldname) and k.get(fieldname) and tighter(g[fieldname], k[fieldname]):
                show = (lambda v: v) if fieldname in ("max_conns", "max_attempts") else (lambda v: f"{seconds(v):g}s")
                log.warning("%s: poolproof holds this driver to %s=%s, tighter than the %s it keeps",
                            svc, fieldname, show(g[fieldname]), show(k[fieldname]))


class _Quieter(logging.Filter):
    """Lets the first few of each log message through, then one in 1000 with
    its count: urllib3 can warn once per request, which would bury stderr."""

    def __init__(self):
        super().__init__()
        self.counts, self.lock = {}, threading.Lock()

    def filter(self, record):
        with self.lock:
            n = self.counts[record.msg] = self.counts.get(record.msg, 0) + 1
        if n > 3 and n % 1000:
            return False
        if n > 3:
            record.msg = f"{record.msg} [{n} times so far]"
        return True


def _setup_logging():
    h = logging.StreamHandler(sys.stderr)
    h.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    h.addFilter(_Quieter())
    root = logging.getLogger()
    root.addHandler(h)
    root.setLevel(logging.WARNING)
    log.setLevel(logging.INFO)


def _parse_call(msg):
    headers = {}
    for name, values in (msg.get("headers") or {}).items():
        headers[name] = ", ".join(values) if isinstance(values, list) else str(values)
    body = msg.get("body")
    return Call(id=msg["id"], service=msg.get("service", ""), method=msg.get("method", "GET"),
                url=msg["url"], headers=headers, body=base64.b64decode(body) if body else None)


def _run_call(driver, msg):
    call_id = msg.get("id")
    try:
        call = _parse_call(msg)
        reply = result_of(call_id, driver.call(call))
    except Exception as exc:  # every failure is an answer, never a dead thread
        try:
            cls = driver.classify(exc)
        except Exception:
            cls = "other"
        reply = error_of(call_id, cls if cls in CLASSES else "other", exc)
    send(reply)


IDLE_RETIRE = 0.3  # seconds an idle worker waits for a call before it ends
_RETIRED = object()


class _Workers:
    """Threads that run calls, kept between calls: starting a thread costs
    the reader a scheduling round trip (milliseconds on a loaded machine),
    which would throttle a burst of calls. A call goes to an idle worker, or
    to a new one when all are busy, so calls never wait for each other. On
    close the idle workers end, and a worker idle for IDLE_RETIRE ends by
    itself, so the process holds as many threads after close as before its
    first call, even when calls were still running at close."""

    def __init__(self, run):
        self.run = run
        self.lock = threading.Condition()
        self.items = queue.SimpleQueue()
        self.idle = 0  # workers that declared themselves free; each takes one item
        self.ending = 0

    def submit(self, item):
        with self.lock:
            if self.idle:
                self.idle -= 1
                self.items.put(item)
                return
        threading.Thread(target=self._work, args=(item,), daemon=True).start()

    def _work(self, item):
        while item is not None:
            self.run(item)
            with self.lock:
                self.idle += 1
            item = self._next()
            if item is _RETIRED:
                return
        with self.lock:
            self.ending -= 1
            self.lock.notify_all()

    def _next(self):
        """The next item, or _RETIRED once the worker sat idle for IDLE_RETIRE
        seconds with no item meant for it: a call still running at close
        (one its caller gave up on) ends as a worker that does not stay."""
        while True:
            try:
                return self.items.get(timeout=IDLE_RETIRE)
            except queue.Empty:
                with self.lock:
                    if self.idle > 0:  # no submit counted on this worker
                        self.idle -= 1
                        return _RETIRED
                # a submit took this worker's idle slot: its item is coming

    def shrink(self, timeout=2.0):
        """Ends the idle workers and waits (bounded) until they have."""
        with self.lock:
            n, self.idle = self.idle, 0
            self.ending += n
            for _ in range(n):
                self.items.put(None)
            self.lock.wait_for(lambda: self.ending == 0, timeout)


def _exit():
    """Exits at once: in-flight calls are abandoned, as shutdown asks."""
    try:
        with _out_lock:
            _out.flush()
    finally:
        os._exit(0)


def serve(driver):
    _setup_logging()
    workers = _Workers(lambda msg: _run_call(driver, msg))
    for raw in sys.stdin.buffer:
        try:
            msg = json.loads(raw)
            kind = msg.get("type")
        except (ValueError, AttributeError) as exc:
            log.error("ignoring a line that is not a JSON object: %s (%r)", exc, raw[:200])
            continue
        if kind == "call":
            if "id" not in msg:
                log.error("ignoring a call without an id: %r", raw[:200])
                continue
            workers.submit(msg)
        elif kind == "init":
            if msg.get("protocol", PROTOCOL) != PROTOCOL:
                log.error("poolproof speaks protocol %s; this driver speaks %d", msg.get("protocol"), PROTOCOL)
            services = [Service(s["name"], s.get("base_url", ""), s.get("ca_file") or "")
                        for s in msg.get("services") or []]
            driver.init(services, msg.get("contract") or {})
            send({"type": "init_ok", "driver": driver.name, "library": driver.library, "version": driver.version})
        elif kind == "close":
            driver.close()
            workers.shrink()
            send({"type": "close_ok"})
        elif kind == "shutdown":
            _exit()
        else:
            log.error("ignoring a message of unknown type %r", kind)
    _exit()  # EOF on stdin means shutdown
