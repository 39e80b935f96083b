#!/usr/bin/python3
"""httpx as a team sets it up: one httpx.Client per service, each with its
own Limits and Timeout, HTTP/2 on (python3-h2).

    payment       10 connections, 2 s connect, 15 s read
    inventory     30 connections, 1 s connect,  5 s read
    notification  50 connections, 1 s connect,  3 s read

What this configuration does not do, which poolproof should find (httpx
0.23 / httpcore 0.16, Debian 12):

  - No retries at all: httpx retries nothing on 429/5xx, and its
    transport-level retries (HTTPTransport(retries=...), connect failures
    only) are not set here, as in most code.
  - Timeouts bound each network operation, not the call: a body that
    trickles in stays within the read timeout chunk by chunk and never
    times out, so a call outlives connect + read.
  - No circuit breaker.
  - HTTP/2 from threads is not thread-safe in httpx 0.23 / httpcore 0.16:
    calls sharing the client's one HTTP/2 connection from several threads
    corrupt its h2/hpack state (KeyError, "deque mutated during iteration",
    LocalProtocolError), until the server ends the connection with GOAWAY
    PROTOCOL_ERROR (known upstream: encode/httpx#3566, #3072). httpcore then
    keeps handing out the ended connection (a GOAWAY does not make it
    unavailable, httpcore/_sync/http2.py is_available), so every later call
    fails with ConnectionTerminated and the client never recovers. With
    http2=False the same scenarios pass.
What it does well: Limits bound the pool, a call that waits longer than the
pool timeout for a connection fails (PoolTimeout), a body cut short is an
error (h11 checks Content-Length), and over TLS HTTP/2 multiplexes the calls
to a service on one connection.
"""

import logging
import threading

import h2
import httpcore
import httpx

import ppdriver

SETTINGS = {
    "payment": (httpx.Limits(max_connections=10, max_keepalive_connections=5, keepalive_expiry=5.0),
                httpx.Timeout(connect=2.0, read=15.0, write=5.0, pool=2.0)),
    "inventory": (httpx.Limits(max_connections=30, max_keepalive_connections=15, keepalive_expiry=5.0),
                  httpx.Timeout(connect=1.0, read=5.0, write=5.0, pool=1.0)),
    "notification": (httpx.Limits(max_connections=50, max_keepalive_connections=25, keepalive_expiry=5.0),
                     httpx.Timeout(connect=1.0, read=3.0, write=3.0, pool=1.0)),
}

log = logging.getLogger("httpx-driver")


def new_client(name, ca_file):
    limits, timeout = SETTINGS.get(name, SETTINGS["inventory"])
    return httpx.Client(http2=True, limits=limits, timeout=timeout, verify=ca_file or True)


class ServiceClients:
    """One service's client. close() swaps in a fresh client and closes the
    old one once its calls are done: httpx has no "close idle connections",
    and Client.close() would cut the calls still running on it."""

    def __init__(self, name, ca_file):
        self.name, self.ca_file = name, ca_file
        self.lock = threading.Lock()
        self.client = new_client(name, ca_file)
        self.running = {self.client: 0}
        self.logged_version = False

    def call(self, call):
        with self.lock:
            client = self.client
            self.running[client] += 1
        try:
            resp = client.request(call.method, call.url, headers=call.headers, content=call.body)
            if not self.logged_version:
                self.logged_version = True
                log.info("%s: first response over %s", self.name, resp.http_version)
            return ppdriver.Response(resp.status_code, resp.headers.multi_items(), resp.content)
        finally:
            self._done(client)

    def _done(self, client):
        with self.lock:
            self.running[client] -= 1
            retired = client is not self.client and self.running[client] == 0
            if retired:
                del self.running[client]
        if retired:
            client.close()

    def close(self):
        with self.lock:
            old, self.client = self.client, new_client(self.name, self.ca_file)
            self.running[self.client] = 0
            idle = self.running[old] == 0
            if idle:
                del self.running[old]
        if idle:
            old.close()


class Driver:
    name = "python-httpx"
    library = "httpx"
    version = f"{httpx.__version__} (httpcore {httpcore.__version__}, h2 {h2.__version__})"

    def __init__(self):
        self.services = {}

    def init(self, services, contract):
        log.setLevel(logging.INFO)
        for svc in services:
            self.services[svc.name] = ServiceClients(svc.name, svc.ca_file)

    def call(self, call):
        svc = self.services.get(call.service)
        if svc is None:
            raise ValueError(f"unknown service {call.service!r}: init named {sorted(self.services)}")
        return svc.call(call)

    def close(self):
        for svc in self.services.values():
            svc.close()

    def classify(self, exc):
        chain = ppdriver.causes(exc)
        if any(isinstance(e, (httpx.PoolTimeout, httpcore.PoolTimeout)) for e in chain):
            return "pool_exhausted"
        if any(isinstance(e, (httpx.TimeoutException, httpcore.TimeoutException)) for e in chain):
            return "timeout"
        builtin = ppdriver.classify_builtin(chain)
        if builtin:
            return builtin
        if any(isinstance(e, httpx.ConnectError) for e in chain):
            return "connect"
        # h11's "Server disconnected without sending a response" and "peer
        # closed connection without sending complete message body".
        if any(isinstance(e, httpx.RemoteProtocolError) for e in chain):
            return "eof"
        if any(isinstance(e, (httpx.ReadError, httpx.WriteError)) for e in chain):
            return "reset"
        return "other"


if __name__ == "__main__":
    ppdriver.serve(Driver())
