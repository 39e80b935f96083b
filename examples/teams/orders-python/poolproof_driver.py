#!/usr/bin/python3
"""poolproof's driver for the orders team's client: the driver protocol's
plumbing comes from poolproof's ppdriver.py (PPDRIVER_DIR names its
folder), the client is the team's own orders_http.py, unchanged.
"""

import os
import sys

sys.path.insert(0, os.environ.get("PPDRIVER_DIR", ""))

import ppdriver  # noqa: E402  (found through PPDRIVER_DIR)
import requests  # noqa: E402
import urllib3  # noqa: E402

import orders_http  # noqa: E402


class Driver:
    name = "orders-http"
    library = "requests"
    version = f"{requests.__version__} (urllib3 {urllib3.__version__})"

    def __init__(self):
        self.clients = {}

    def init(self, services, contract):
        for svc in services:
            self.clients[svc.name] = orders_http.Client(svc.name, svc.ca_file)

    def call(self, call):
        client = self.clients.get(call.service)
        if client is None:
            raise ValueError(f"unknown service {call.service!r}: init named {sorted(self.clients)}")
        status, headers, body = client.call(call.method, call.url, headers=call.headers, body=call.body)
        return ppdriver.Response(status, headers, body)

    def close(self):
        for client in self.clients.values():
            client.close_idle()

    def classify(self, exc):
        return ppdriver.classify_requests(exc, pool_exhausted=(orders_http.PoolExhausted,),
                                          timeouts=(orders_http.DeadlineExceeded,))


if __name__ == "__main__":
    ppdriver.serve(Driver())
