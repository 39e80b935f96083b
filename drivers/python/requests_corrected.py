#!/usr/bin/python3
"""requests configured to keep a contract: requests_typical.py, corrected.

Each fix answers one flaw of the typical configuration, with requests 2.28 /
urllib3 1.26 (Debian 12) and no other package:

  - Bounded pool that fails fast: pool_block=True with pool_maxsize =
    max_conns, and a wait for a free connection bounded by pool_wait
    (requests never passes urllib3 a pool timeout, so pool_block=True alone
    waits forever); a call that finds no connection in time fails with
    urllib3's EmptyPoolError.
  - Safe retries: a POST (or PATCH) is retried only when it carries an
    Idempotency-Key. Without one, only failures to connect are retried (the
    request never left); a reset, a timeout or a 5xx after sending is
    returned, since the server may have acted on it.
  - Jittered, capped backoff from the first retry (urllib3 1.26 retries the
    first time at once and has no jitter): equal jitter, half the delay fixed
    and half random, capped per service.
  - A retry budget per service (retries at most 20% of calls, plus 5 a
    second), so retries cannot multiply the load on a failing service.
  - Retry-After respected (urllib3's respect_retry_after_header) when the
    wait fits in the call's deadline; otherwise the 429/503 is returned.
  - One deadline per call, the contract's request_timeout, over everything:
    the pool wait, each connect and read (urllib3 timeouts clamped to what is
    left), the backoff between attempts (no retry that cannot finish in
    time) and the body read (a watchdog shuts the socket at the deadline: a
    trickling body cannot outlive it).
  - A body shorter than its Content-Length is an error, not a success
    (urllib3 1.26's enforce_content_length, off by default).
  - Once retries are spent the last response is returned
    (raise_on_status=False), not a RetryError.

The limits it keeps are read from requests_corrected.contract.json beside
this file, so the contract is what the code does; the backoff and the
budget are set here (TUNING, BUDGET_RATIO) and declared with the same
values in the contract (backoff_base, backoff_cap, backoff_jitter 0.5 for
equal jitter, retry_budget), which the retry checks hold them to.
"""

import heapq
import itertools
import os
import random
import socket
import threading
import time

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import InvalidHeader, MaxRetryError, ResponseError
from urllib3.response import HTTPResponse
from urllib3.util.retry import Retry
from urllib3.util.timeout import Timeout

import ppdriver

CONTRACT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "requests_corrected.contract.json")

# Per service: the connect timeout of one attempt and the backoff (first
# retry, cap), in seconds. Reads are bounded by the call's deadline.
TUNING = {
    "payment": {"connect": 1.0, "backoff": 0.1, "backoff_max": 1.0},
    "inventory": {"connect": 0.3, "backoff": 0.02, "backoff_max": 0.2},
    "notification": {"connect": 0.3, "backoff": 0.02, "backoff_max": 0.1},
    None: {"connect": 0.5, "backoff": 0.05, "backoff_max": 0.5},
}
BUDGET_RATIO, BUDGET_PER_SECOND = 0.2, 5

IDEMPOTENT = Retry.DEFAULT_ALLOWED_METHODS  # HEAD GET PUT DELETE OPTIONS TRACE
KEYED = IDEMPOTENT | {"POST", "PATCH"}


class DeadlineExceeded(TimeoutError):
    pass


class RetryBudget:
    """Every call deposits BUDGET_RATIO of a retry, every retry withdraws one,
    BUDGET_PER_SECOND trickle in (Finagle's RetryBudget)."""

    def __init__(self, ratio, per_second):
        self.ratio, self.per_second = ratio, per_second
        self.cap = max(10.0, float(per_second))
        self.balance, self.last = float(per_second), time.monotonic()
        self.lock = threading.Lock()

    def _refill(self, now):
        self.balance = min(self.cap, self.balance + (now - self.last) * self.per_second)
        self.last = now

    def deposit(self):
        with self.lock:
            self._refill(time.monotonic())
            self.balance = min(self.cap, self.balance + self.ratio)

    def withdraw(self):
        with self.lock:
            self._refill(time.monotonic())
            if self.balance < 1:
                return False
            self.balance -= 1
            return True


class DeadlineTimeout(Timeout):
    """urllib3 timeouts clamped to what is left of the call's deadline, on
    every attempt (urllib3 clones the timeout per attempt)."""

    def __init__(self, connect, read, deadline):
        super().__init__(connect=connect, read=read)
        self.deadline = deadline

    def clone(self):
        return DeadlineTimeout(self._connect, self._read, self.deadline)

    def _left(self):
        return max(0.001, self.deadline - time.monotonic())

    @property
    def connect_timeout(self):
        return min(self._connect, self._left())

    @property
    def read_timeout(self):
        return min(self._read, self._left())


class DeadlineRetry(Retry):
    """urllib3's Retry with a deadline, a budget and jittered backoff that
    starts at the first retry. increment() decides the wait before the retry
    happens, so a retry that cannot finish in time is not made."""

    def __init__(self, *args, deadline=None, budget=None, backoff_max=1.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.deadline, self.budget, self.backoff_max = deadline, budget, backoff_max
        self.wait = 0.0

    def new(self, **kw):
        kw.setdefault("deadline", self.deadline)
        kw.setdefault("budget", self.budget)
        kw.setdefault("backoff_max", self.backoff_max)
        return super().new(**kw)

    def get_backoff_time(self):
        retries = len(self.history)
        if retries == 0:
            return 0.0
        delay = min(self.backoff_max, self.backoff_factor * 2 ** (retries - 1))
        return delay / 2 + random.uniform(0, delay / 2)

    def increment(self, method=None, url=None, response=None, error=None, _pool=None, _stacktrace=None):
        # urllib3 retries "other" errors (an SSL error, say) of any method:
        # only a failure to connect proves an unkeyed POST was not sent.
        if error is not None and not self._is_connection_error(error) and not self._is_method_retryable(method):
            raise error
        new = super().increment(method, url, response, error, _pool, _stacktrace)

        def refuse(why):
            raise MaxRetryError(_pool, url, error or ResponseError(why))

        wait = None
        if response is not None and self.respect_retry_after_header and response.status in self.RETRY_AFTER_STATUS_CODES:
            try:
                wait = self.get_retry_after(response)
            except InvalidHeader:
                wait = None
        if wait is None:
            wait = new.get_backoff_time()
        if self.deadline is not None and time.monotonic() + wait >= self.deadline:
            refuse(f"a retry in {wait:.3f}s would end past the call's deadline")
        if self.budget is not None and not self.budget.withdraw():
            refuse("retry budget spent")
        new.wait = wait
        return new

    def sleep(self, response=None):
        if self.wait > 0:
            time.sleep(self.wait)


class StrictLengthResponse(HTTPResponse):
    def __init__(self, *args, **kwargs):
        kwargs["enforce_content_length"] = True
        super().__init__(*args, **kwargs)


def bounded_wait(pool_class, pool_wait):
    """A urllib3 pool class whose wait for a free connection is pool_wait."""

    class Pool(pool_class):
        ResponseCls = StrictLengthResponse

        def _get_conn(self, timeout=None):
            return super()._get_conn(timeout=pool_wait if timeout is None else timeout)

    Pool.__name__ = Pool.__qualname__ = "Bounded" + pool_class.__name__  # as errors name it
    return Pool


class ContractAdapter(HTTPAdapter):
    """HTTPAdapter with a bounded, fail-fast pool, and per-request retries:
    keyed or idempotent requests get the retry policy, others only connect
    retries, each bounded by the call's deadline."""

    def __init__(self, *, retry, budget, pool_wait, **kwargs):
        self._retry, self._budget, self._pool_wait = retry, budget, pool_wait
        self._this_call = threading.local()  # a call runs on one thread, start to end
        super().__init__(max_retries=retry, **kwargs)

    # requests reads self.max_retries once per send; this call's policy.
    @property
    def max_retries(self):
        return getattr(self._this_call, "retry", None) or self._retry

    @max_retries.setter
    def max_retries(self, value):
        pass  # HTTPAdapter.__init__ sets it; the policy is chosen per call

    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": bounded_wait(HTTPConnectionPool, self._pool_wait),
            "https": bounded_wait(HTTPSConnectionPool, self._pool_wait),
        }

    def send(self, request, timeout=None, **kwargs):
        replayable = request.method in IDEMPOTENT or "Idempotency-Key" in request.headers
        self._budget.deposit()
        self._this_call.retry = self._retry.new(
            allowed_methods=KEYED if replayable else IDEMPOTENT,
            deadline=getattr(timeout, "deadline", None))
        try:
            return super().send(request, timeout=timeout, **kwargs)
        finally:
            self._this_call.retry = None


class Client:
    """One service's session and limits."""

    def __init__(self, contract, tuning, ca_file, watchdog):
        self.watchdog = watchdog
        self.request_timeout = ppdriver.seconds(contract["request_timeout"])
        self.connect = tuning["connect"]
        retry = DeadlineRetry(
            total=contract["max_attempts"] - 1,
            backoff_factor=tuning["backoff"],
            backoff_max=tuning["backoff_max"],
            status_forcelist=[429, 500, 502, 503, 504],
            allowed_methods=IDEMPOTENT,
            respect_retry_after_header=True,
            raise_on_status=False,
        )
        # pool_maxsize bounds the connections to one host, and a service is
        # one host. pool_connections counts the per-host pools kept: with too
        # few, a call to another host evicts, and closes, a pool in use
        # ("Pool is closed").
        adapter = ContractAdapter(retry=retry, budget=RetryBudget(BUDGET_RATIO, BUDGET_PER_SECOND),
                                  pool_wait=ppdriver.seconds(contract["pool_wait"]),
                                  pool_connections=10, pool_maxsize=contract["max_conns"], pool_block=True)
        self.session = requests.Session()
        self.session.trust_env = False  # no proxy or CA bundle from the environment
        self.session.verify = ca_file or True
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)

    def call(self, call):
        deadline = time.monotonic() + self.request_timeout
        timeout = DeadlineTimeout(self.connect, self.request_timeout, deadline)
        resp = self.session.request(call.method, call.url, headers=call.headers, data=call.body,
                                    timeout=timeout, stream=True)
        with resp:
            return ppdriver.Response(resp.status_code, list(resp.raw.headers.iteritems()),
                                     read_by(resp.raw, deadline, self.watchdog))


class Watchdog:
    """One thread that shuts a socket down when its call's deadline passes,
    which ends a read blocked on a trickling body (socket timeouts bound each
    recv, not their sum). It starts with the driver, so it is part of the
    process before the first call, and watches every call's body read. Should
    it fire just as a body ends, it cuts a connection already back in the
    pool, which urllib3 sees as dropped and replaces before reuse."""

    def __init__(self):
        self.cond = threading.Condition()
        self.heap = []  # [deadline, seq, socket or None once done, fired]
        self.seq = itertools.count()
        threading.Thread(target=self._run, name="deadline-watchdog", daemon=True).start()

    def watch(self, deadline, sock):
        entry = [deadline, next(self.seq), sock, False]
        with self.cond:
            heapq.heappush(self.heap, entry)
            if self.heap[0] is entry:
                self.cond.notify()
        return entry

    def done(self, entry):
        """Stops watching; reports whether the deadline fired first."""
        with self.cond:
            entry[2] = None
            return entry[3]

    def _run(self):
        with self.cond:
            while True:
                while self.heap and self.heap[0][2] is None:
                    heapq.heappop(self.heap)
                if not self.heap:
                    self.cond.wait()
                    continue
                wait = self.heap[0][0] - time.monotonic()
                if wait > 0:
                    self.cond.wait(wait)
                    continue
                entry = heapq.heappop(self.heap)
                entry[3] = True
                try:
                    socket.socket.shutdown(entry[2], socket.SHUT_RDWR)  # the plain socket's, under TLS too
                except OSError:
                    pass


def read_by(raw, deadline, watchdog):
    """Reads the whole body, or raises DeadlineExceeded at the deadline."""
    sock = getattr(raw.connection, "sock", None)
    if sock is None:
        return raw.read(decode_content=True)
    entry = watchdog.watch(deadline, sock)
    try:
        body = raw.read(decode_content=True)
    except Exception as exc:
        if watchdog.done(entry):
            raise DeadlineExceeded("deadline exceeded while reading the body") from exc
        raise
    if watchdog.done(entry):
        raise DeadlineExceeded("deadline exceeded while reading the body")
    return body


class Driver:
    name = "python-requests-corrected"
    library = "requests"
    version = f"{requests.__version__} (urllib3 {urllib3.__version__})"

    def __init__(self):
        self.kept = ppdriver.load_contract(CONTRACT)
        self.clients = {}

    def init(self, services, contract):
        ppdriver.warn_if_tighter(contract, self.kept)
        watchdog = Watchdog()
        for svc in services:
            self.clients[svc.name] = Client(ppdriver.contract_for(self.kept, svc.name),
                                            TUNING.get(svc.name, TUNING[None]), svc.ca_file, watchdog)

    def call(self, call):
        client = self.clients.get(call.service)
        if client is None:
            raise ValueError(f"unknown service {call.service!r}: init named {sorted(self.clients)}")
        return client.call(call)

    def close(self):
        for client in self.clients.values():
            client.session.close()

    def classify(self, exc):
        return ppdriver.classify_requests(exc, timeouts=(DeadlineExceeded,))


if __name__ == "__main__":
    ppdriver.serve(Driver())
