#!/usr/bin/python3
"""requests as a typical service configures it, certified as it is.

One requests.Session per service, mounted with the adapter every blog post
and internal wiki recommends:

    retry = Retry(total=3, backoff_factor=0.5,
                  status_forcelist=[429, 500, 502, 503, 504],
                  allowed_methods=Retry.DEFAULT_ALLOWED_METHODS | {"POST"})
    adapter = TimeoutHTTPAdapter(timeout=(5, 30), pool_connections=10,
                                 pool_maxsize=20, pool_block=False,
                                 max_retries=retry)

Nothing here simulates a flaw; these are the flaws of this configuration
with requests 2.28 / urllib3 1.26 (Debian 12), which poolproof should find:

  - POST is retried, with no Idempotency-Key: a charge the server committed
    before its connection died or it answered 500 is sent, and charged, again.
  - pool_block=False: when all 20 pooled connections are busy, urllib3 opens
    another one per call instead of waiting ("Connection pool is full,
    discarding connection"), so the connections to a service are unbounded
    and the overflow ones are thrown away after one use (churn).
  - No jitter (urllib3 1.26 has no backoff_jitter; 2.x has it, default 0),
    and urllib3 1.26 makes the first retry at once: backoff_factor * 2**(n-1)
    counts from the second retry, so the first one gets no backoff.
  - timeout=(5, 30) bounds each socket operation, not the call: a body that
    trickles in never times out, and four attempts (1 + 3 retries) may each
    take 5 s + 30 s, plus backoff; a Retry-After is honoured however long.
  - urllib3 1.26 does not enforce Content-Length: a body cut short by the
    peer comes back as a shorter body and a success.
  - Once retries are spent on 429/5xx, requests raises RetryError instead of
    returning the last response (raise_on_status defaults to True).
"""

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

import ppdriver


class TimeoutHTTPAdapter(HTTPAdapter):
    """The well-known adapter that gives every request a default timeout
    (requests itself has none)."""

    def __init__(self, *args, timeout=None, **kwargs):
        self.timeout = timeout
        super().__init__(*args, **kwargs)

    def send(self, request, **kwargs):
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout
        return super().send(request, **kwargs)


def new_session(ca_file):
    retry = Retry(
        total=3,
        backoff_factor=0.5,
        status_forcelist=[429, 500, 502, 503, 504],
        allowed_methods=Retry.DEFAULT_ALLOWED_METHODS | {"POST"},
    )
    adapter = TimeoutHTTPAdapter(timeout=(5, 30), pool_connections=10, pool_maxsize=20,
                                 pool_block=False, max_retries=retry)
    session = requests.Session()
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


class Driver:
    name = "python-requests-typical"
    library = "requests"
    version = f"{requests.__version__} (urllib3 {urllib3.__version__})"

    def __init__(self):
        self.sessions = {}
        self.ca_files = {}

    def init(self, services, contract):
        for svc in services:
            self.ca_files[svc.name] = svc.ca_file
            self.sessions[svc.name] = new_session(svc.ca_file)

    def call(self, call):
        session = self.sessions.get(call.service)
        if session is None:
            raise ValueError(f"unknown service {call.service!r}: init named {sorted(self.sessions)}")
        # verify per request, not session.verify: requests lets
        # REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE override the session's
        # (psf/requests#3829), and Debian sets them.
        ca_file = self.ca_files.get(call.service) or True
        resp = session.request(call.method, call.url, headers=call.headers, data=call.body, verify=ca_file)
        body = resp.content  # the whole body, as the application reads it
        return ppdriver.Response(resp.status_code, list(resp.raw.headers.iteritems()), body)

    def close(self):
        # Session.close closes every pooled connection; the session stays
        # usable (its pools are made again on the next request).
        for session in self.sessions.values():
            session.close()

    def classify(self, exc):
        return ppdriver.classify_requests(exc)


if __name__ == "__main__":
    ppdriver.serve(Driver())
