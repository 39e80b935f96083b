"""The orders team's HTTP client for its upstream services, on requests.

One Session per service. Its calls are bounded by a semaphore of the
service's max_conns, acquired within pool_wait or failed fast
(PoolExhausted), so the pool beneath never needs more connections than
that and none is opened and thrown away. One deadline bounds a whole call,
connect, send and body read. Nothing is retried but a connect that failed
(the request never left): a charge is never sent twice.

The application calls new_client(service) and Client.call(); the driver
beside it (poolproof_driver.py) puts the same code under poolproof.
"""

import threading
import time

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

# The team's settings per service: connections at most, how long a call
# may wait for one, and the deadline of a whole call, in seconds.
SETTINGS = {
    "payment": {"max_conns": 8, "pool_wait": 0.25, "deadline": 5.0},
    "inventory": {"max_conns": 16, "pool_wait": 0.1, "deadline": 1.0},
    "notification": {"max_conns": 8, "pool_wait": 0.1, "deadline": 1.0},
}


class PoolExhausted(Exception):
    """No connection came free within the service's pool_wait."""


class DeadlineExceeded(TimeoutError):
    """The call's deadline passed before its body was read."""


class Client:
    def __init__(self, service, ca_file=""):
        self.service = service
        self.settings = SETTINGS[service]
        self.slots = threading.BoundedSemaphore(self.settings["max_conns"])
        self.ca_file = ca_file or True
        self.session = requests.Session()
        self.session.trust_env = False  # no proxy, no CA bundle from the environment
        retry = Retry(total=1, connect=1, read=0, status=0, other=0, redirect=0, raise_on_status=False)
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=self.settings["max_conns"], max_retries=retry)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

    def call(self, method, url, headers=None, body=None):
        """One call: (status, headers, body), or an exception."""
        start = time.monotonic()
        if not self.slots.acquire(timeout=self.settings["pool_wait"]):
            raise PoolExhausted(f"{self.service}: {self.settings['max_conns']} calls in flight for {self.settings['pool_wait']}s")
        try:
            deadline = start + self.settings["deadline"]

            def left():
                return max(0.001, deadline - time.monotonic())

            resp = self.session.request(method, url, headers=headers, data=body, stream=True,
                                        timeout=(min(1.0, left()), left()), verify=self.ca_file)
            with resp:
                chunks = []
                for chunk in resp.iter_content(16 * 1024):
                    chunks.append(chunk)
                    if time.monotonic() > deadline:
                        raise DeadlineExceeded(f"{self.service}: the body was still arriving at the deadline")
                return resp.status_code, list(resp.raw.headers.items()), b"".join(chunks)
        finally:
            self.slots.release()

    def close_idle(self):
        """Close the pooled connections; the session stays usable."""
        self.session.close()
