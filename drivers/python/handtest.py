#!/usr/bin/python3
"""The hand test of one driver, without the Go harness: drivers/selftest.sh
starts the fake services and runs this once per driver.

It starts the driver, speaks the protocol to it on stdin/stdout and checks
two things:

  - the protocol, which every driver must keep (a failure exits 1): init_ok
    with driver, library and version; every call answered exactly once; only
    protocol lines on stdout; a 200's body_sha256 equal to its X-Body-Digest
    and body_len to its Content-Length; the headers given reaching the
    server; calls served concurrently; a closed port classed connect; close
    answered close_ok and the idle connections released; shutdown and EOF
    ending the process with 0 within 5 s.
  - the behaviour its configuration promises, driver by driver (EXPECT
    below), under faults set through the fake services' admin API:
    retries on 503, a charge that fails after it was committed, 429 with
    Retry-After, a trickling body, a cut body, more callers than the pool.
    A driver that behaves otherwise than its docstring says fails too.

usage: handtest.py --inventory URL,ADMIN --payment URL,ADMIN
                   --notification URL,ADMIN --ca FILE -- DRIVER COMMAND...
"""

import argparse
import base64
import hashlib
import json
import os
import queue
import re
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import datetime

OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class Admin:
    def __init__(self, url):
        self.url = url

    def _do(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with OPENER.open(req, timeout=10) as resp:
            raw = resp.read()
        return json.loads(raw) if raw.strip().startswith((b"{", b"[")) else raw

    def faults(self, *faults):
        self._do("POST", "/__admin/faults", list(faults))

    def clear(self):
        self._do("DELETE", "/__admin/faults")

    def reset(self):
        self._do("POST", "/__admin/reset", {})

    def stats(self):
        return self._do("GET", "/__admin/stats")

    def conns(self):
        return self._do("GET", "/__admin/conns")

    def attempts(self, request_id):
        return [r for r in self.stats()["requests"] if r["request_id"] == request_id]


class Driver:
    """The driver process and its answers."""

    def __init__(self, cmd, stderr_path):
        env = dict(os.environ, POOLPROOF_DRIVER_PROTOCOL="1")
        self.stderr = open(stderr_path, "wb")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr, env=env)
        self.lines = queue.Queue()
        self.garbage = []
        self.answers = {}  # id -> [(result, seconds since sent)]
        self.sent = {}
        self.lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for raw in self.proc.stdout:
            try:
                msg = json.loads(raw)
                if not isinstance(msg, dict) or "type" not in msg:
                    raise ValueError("not a message")
            except ValueError:
                self.garbage.append(raw[:200])
                continue
            if msg["type"] == "result":
                with self.lock:
                    t0 = self.sent.get(msg.get("id"))
                    self.answers.setdefault(msg.get("id"), []).append((msg, time.monotonic() - t0 if t0 else None))
            elif msg["type"] in ("init_ok", "close_ok"):
                self.lines.put(msg)
            else:
                self.garbage.append(raw[:200])
        self.lines.put(None)

    def send(self, msg):
        if msg.get("type") == "call":
            with self.lock:
                self.sent[msg["id"]] = time.monotonic()
        self.proc.stdin.write(json.dumps(msg).encode() + b"\n")
        self.proc.stdin.flush()

    def expect(self, kind, timeout):
        try:
            msg = self.lines.get(timeout=timeout)
        except queue.Empty:
            return None
        return msg if msg and msg["type"] == kind else None

    def wait(self, ids, timeout):
        """Waits for answers to ids; returns {id: (result, seconds)}, the
        first answer of each (None for none)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with self.lock:
                if all(i in self.answers for i in ids):
                    break
            time.sleep(0.01)
        with self.lock:
            return {i: (self.answers[i][0] if i in self.answers else (None, None)) for i in ids}

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.stderr.close()


class Run:
    def __init__(self, args):
        self.args = args
        self.urls = {"inventory": args.inventory[0], "payment": args.payment[0], "notification": args.notification[0]}
        self.admin = {"inventory": Admin(args.inventory[1]), "payment": Admin(args.payment[1]),
                      "notification": Admin(args.notification[1])}
        self.failures = []
        self.next_id = 0
        self.tag = f"ht{os.getpid()}"
        self.name = "?"

    def check(self, ok, what, detail=""):
        print(f"  {'ok  ' if ok else 'FAIL'} {what}{': ' + detail if detail else ''}", flush=True)
        if not ok:
            self.failures.append(what)

    def call(self, d, service, method, path, headers=None, body=None, url=None):
        self.next_id += 1
        cid = self.next_id
        rid = f"{self.tag}-{cid}"
        h = {"X-Request-ID": [rid]}
        h.update(headers or {})
        msg = {"type": "call", "id": cid, "service": service, "method": method,
               "url": url or self.urls[service] + path, "headers": h}
        if body is not None:
            h.setdefault("Content-Type", ["application/json"])
            msg["body"] = base64.b64encode(json.dumps(body).encode()).decode()
        d.send(msg)
        return cid, rid

    def charge(self, d, order, key=None):
        headers = {"Idempotency-Key": [key]} if key else {}
        return self.call(d, "payment", "POST", "/v1/charges", headers,
                         {"order_id": order, "amount": 1250, "currency": "EUR"})


def digest_ok(res):
    hdr = {k.lower(): v for k, v in (res.get("headers") or {}).items()}
    want = (hdr.get("x-body-digest") or [""])[0].removeprefix("sha256=")
    clen = (hdr.get("content-length") or [None])[0]
    return want == res.get("body_sha256") and (clen is None or int(clen) == res.get("body_len"))


def counts(pid):
    """The process's open file descriptors and threads, from /proc."""
    with open(f"/proc/{pid}/status") as f:
        threads = int(next(line for line in f if line.startswith("Threads:")).split()[1])
    return len(os.listdir(f"/proc/{pid}/fd")), threads


def outcome(res):
    if res is None:
        return "no answer"
    if "error" in res:
        return f"error {res['error']['class']}"
    return f"status {res['status']}"


def arrived(a):
    """Seconds of a server record's RFC 3339 arrival time (nanoseconds kept to microseconds)."""
    stamp, _, frac = a["arrived"].rstrip("Z").partition(".")
    frac = re.split(r"[+-]", frac)[0]
    return datetime.fromisoformat(stamp).timestamp() + float("0." + (frac or "0"))


def gaps(attempts):
    ts = sorted(arrived(a) for a in attempts)
    return [round(b - a, 2) for a, b in zip(ts, ts[1:])]


# What each configuration promises (its docstring), per behaviour test.
EXPECT = {
    "python-requests-typical": {
        "503": ("error other", 4), "charge-500": 4, "charge-reset": 4,
        "429": ("error other", 4), "keyed-429": ("error other", 4),
        "slow-body": "status 200", "cut-body": "short 200", "pool": "overflow",
    },
    "python-requests-corrected": {
        "503": ("status 503", 3), "charge-500": 1, "charge-reset": 1,
        "429": ("status 429", 1), "keyed-429": ("status 429", 3),
        "slow-body": "error timeout", "cut-body": "error eof", "pool": "bounded",
    },
    "python-httpx": {
        "503": ("status 503", 1), "charge-500": 1, "charge-reset": 1,
        "429": ("status 429", 1), "keyed-429": ("status 429", 1),
        "slow-body": "status 200", "cut-body": "error eof", "pool": "h2",
    },
    "node-axios-typical": {
        "503": ("status 503", 4), "charge-500": 4, "charge-reset": 1,
        "429": ("status 429", 4), "keyed-429": ("status 429", 4),
        "slow-body": "status 200", "cut-body": "error eof", "pool": "unbounded-wait",
    },
    "node-axios-corrected": {
        "503": ("status 503", 3), "charge-500": 1, "charge-reset": 1,
        "429": ("status 429", 1), "keyed-429": ("status 429", 3),
        "slow-body": "error timeout", "cut-body": "error eof", "pool": "bounded",
    },
}


def main():
    ap = argparse.ArgumentParser()
    for svc in ("inventory", "payment", "notification"):
        ap.add_argument("--" + svc, required=True, type=lambda s: s.split(","))
    ap.add_argument("--ca", required=True)
    ap.add_argument("--stderr", default="/dev/null")
    ap.add_argument("cmd", nargs="+")
    args = ap.parse_args()
    run = Run(args)
    for a in run.admin.values():
        a.clear()
        a.reset()

    d = Driver(args.cmd, args.stderr)
    try:
        test(run, d)
    finally:
        d.kill()
        for a in run.admin.values():
            a.clear()
    print(f"  {'PASSED' if not run.failures else 'FAILED: ' + ', '.join(run.failures)}")
    sys.exit(1 if run.failures else 0)


def test(run, d):
    services = [{"name": "inventory", "base_url": run.urls["inventory"], "ca_file": run.args.ca},
                {"name": "payment", "base_url": run.urls["payment"], "ca_file": run.args.ca},
                {"name": "notification", "base_url": run.urls["notification"], "ca_file": ""}]
    d.send({"type": "init", "protocol": 1, "services": services,
            "contract": {"default": {"max_conns": 16, "request_timeout": 2000000000}}})
    ok = d.expect("init_ok", 30)
    run.check(bool(ok and ok.get("driver") and ok.get("library") and ok.get("version")), "init_ok",
              ok and f"{ok['driver']}, {ok['library']} {ok['version']}")
    if not ok:
        return
    run.name = ok["driver"]
    before_call = counts(d.proc.pid)
    expect = EXPECT.get(run.name, {})
    inv, pay, note = run.admin["inventory"], run.admin["payment"], run.admin["notification"]

    # --- protocol -----------------------------------------------------------
    # First batches open the connections (16 TLS handshakes at once can take
    # more than a 1 s deadline on a busy machine); the timed batch reuses them.
    for _ in range(3):
        warm = d.wait([run.call(d, "inventory", "GET", f"/v1/items/warm-{i}")[0] for i in range(16)], 30)
        if all(r and r.get("status") == 200 for r, _ in warm.values()):
            break
        time.sleep(0.2)
    inv.faults({"kind": "delay", "route": "/v1/items/{sku}", "method": "GET", "delay": "300ms"})
    t0 = time.monotonic()
    gets = [run.call(d, "inventory", "GET", f"/v1/items/sku-{i}") for i in range(16)]
    charge = run.charge(d, f"{run.tag}-o1", key=f"{run.tag}-k1")
    note_post = run.call(d, "notification", "POST", "/v1/notifications", body={"channel": "email", "recipient": "u1@example.com"})
    refused = run.call(d, "payment", "GET", "/v1/charges/x", url="https://127.0.0.1:1/v1/charges/x")
    ids = [c for c, _ in gets] + [charge[0], note_post[0], refused[0]]
    got = d.wait(ids, 30)
    elapsed = time.monotonic() - t0
    inv.clear()
    oks = [got[c][0] for c, _ in gets]
    run.check(all(r and r.get("status") == 200 and digest_ok(r) for r in oks), "16 GETs: 200, body_sha256 = X-Body-Digest, body_len = Content-Length",
              ", ".join(sorted({outcome(r) for r in oks})))
    slowest = max((s for _, s in (got[c] for c, _ in gets) if s), default=0)
    run.check(slowest < 2.0, "16 GETs of 300 ms each served concurrently", f"slowest {slowest:.2f}s (one after another: 4.8s)")
    rids = {rid for _, rid in gets}
    spans = [(arrived(a), a["finished"]) for a in inv.stats()["requests"] if a["request_id"] in rids]
    ends = sorted(arrived({"arrived": f}) for _, f in spans)
    starts = sorted(a for a, _ in spans)
    overlap = max((sum(1 for a in starts if a <= t) - sum(1 for e in ends if e <= t) for t in starts), default=0)
    run.check(overlap >= 8, "the server handled them at once", f"up to {overlap} in progress together")
    r = got[charge[0]][0]
    run.check(bool(r and r.get("status") == 201 and digest_ok(r)), "keyed POST charge over TLS",
              outcome(r) + (f": {r['error']['message'][:200]}" if r and "error" in r else ""))
    r = got[note_post[0]][0]
    run.check(bool(r and r.get("status") in (200, 201, 202) and digest_ok(r)), "POST over plain HTTP (ca_file \"\")", outcome(r))
    r = got[refused[0]][0]
    run.check(bool(r and r.get("error", {}).get("class") == "connect"), "closed port classed connect",
              r and r.get("error", {}).get("message", outcome(r))[:140])
    seen = {a["request_id"] for a in inv.stats()["requests"]}
    run.check(all(rid in seen for _, rid in gets), "X-Request-ID reached the server unchanged")
    again = run.charge(d, f"{run.tag}-o1", key=f"{run.tag}-k1")
    r = d.wait([again[0]], 10)[again[0]][0]
    hdr = {k.lower(): v for k, v in ((r or {}).get("headers") or {}).items()}
    run.check(pay.stats()["charges"].get(f"{run.tag}-o1") == 1 and hdr.get("idempotent-replayed") == ["true"],
              "Idempotency-Key reached the server (the same key twice charged once)")

    # --- behaviour ----------------------------------------------------------
    print(f"  behaviour of {run.name}:")

    # 503 on every item GET; a charge that fails after the server committed it.
    inv.faults({"kind": "status", "route": "/v1/items/{sku}", "method": "GET", "status": 503})
    pay.faults({"kind": "process_then_fail", "route": "/v1/charges", "method": "POST", "then": "status", "status": 500})
    c503 = run.call(d, "inventory", "GET", "/v1/items/sku-503")
    c500 = run.charge(d, f"{run.tag}-o500")
    got = d.wait([c503[0], c500[0]], 40)
    want = expect.get("503")
    attempts = inv.attempts(c503[1])
    obs = (outcome(got[c503[0]][0]), len(attempts))
    run.check(want is None or obs == want, "503 on every GET",
              f"{obs[0]} after {obs[1]} attempts in {got[c503[0]][1] or 0:.2f}s, gaps {gaps(attempts)}s")
    charges = pay.stats()["charges"].get(f"{run.tag}-o500", 0)
    want = expect.get("charge-500")
    run.check(want is None or charges == want, "unkeyed charge committed, then 500",
              f"{outcome(got[c500[0]][0])}, charged {charges} time(s)")

    # 429 Retry-After: 1 on every GET; a charge committed, then its connection reset.
    inv.faults({"kind": "status", "route": "/v1/items/{sku}", "method": "GET", "status": 429, "retry_after": "1"})
    pay.faults({"kind": "process_then_fail", "route": "/v1/charges", "method": "POST", "then": "reset"})
    c429 = run.call(d, "inventory", "GET", "/v1/items/sku-429")
    crst = run.charge(d, f"{run.tag}-orst")
    got = d.wait([c429[0], crst[0]], 40)
    inv.clear()
    pay.clear()
    attempts = inv.attempts(c429[1])
    want = expect.get("429")
    obs = (outcome(got[c429[0]][0]), len(attempts))
    run.check(want is None or obs == want, "429 Retry-After: 1 on every GET",
              f"{obs[0]} after {obs[1]} attempts, gaps {gaps(attempts)}s")
    run.check(all(g >= 0.9 for g in gaps(attempts)), "no retry sooner than Retry-After")
    charges = pay.stats()["charges"].get(f"{run.tag}-orst", 0)
    want = expect.get("charge-reset")
    run.check(want is None or charges == want, "unkeyed charge committed, then connection reset",
              f"{outcome(got[crst[0]][0])}, charged {charges} time(s)")

    # A body trickling at 200 B/s (~2.3 s); a body cut after 20 bytes; a
    # keyed charge answered 429 Retry-After: 1.
    inv.faults({"kind": "slow_body", "route": "/v1/items/{sku}", "method": "GET", "bytes_per_second": 200})
    note.faults({"kind": "cut_body", "route": "/v1/notifications", "method": "POST", "cut_after_bytes": 20})
    pay.faults({"kind": "status", "route": "/v1/charges", "method": "POST", "status": 429, "retry_after": "1"})
    slow = run.call(d, "inventory", "GET", "/v1/items/sku-slow")
    cut = run.call(d, "notification", "POST", "/v1/notifications", body={"channel": "sms", "recipient": "+15550100"})
    k429 = run.charge(d, f"{run.tag}-o429", key=f"{run.tag}-k429")
    got = d.wait([slow[0], cut[0], k429[0]], 40)
    inv.clear()
    note.clear()
    pay.clear()
    attempts = pay.attempts(k429[1])
    want = expect.get("keyed-429")
    obs = (outcome(got[k429[0]][0]), len(attempts))
    run.check(want is None or obs == want, "429 Retry-After: 1 on a keyed charge",
              f"{obs[0]} after {obs[1]} attempts, gaps {gaps(attempts)}s")
    run.check(all(g >= 0.9 for g in gaps(attempts)), "no charge retried sooner than Retry-After")
    r, secs = got[slow[0]]
    want = expect.get("slow-body")
    run.check(want is None or outcome(r) == want, "body trickling at 200 B/s", f"{outcome(r)} after {secs or 0:.2f}s")
    if r and "status" in r:
        run.check(digest_ok(r), "trickled body whole")
    r = got[cut[0]][0]
    obs = "short 200" if r and r.get("status") and not digest_ok(r) else outcome(r)
    want = expect.get("cut-body")
    run.check(want is None or obs == want, "body cut after 20 bytes",
              f"{obs}" + (f" ({r['body_len']} bytes)" if r and 'body_len' in r else "") +
              (f": {r['error']['message'][:100]}" if r and 'error' in r else ""))

    # 40 callers, every GET taking 500 ms.
    time.sleep(0.3)
    inv.faults({"kind": "delay", "route": "/v1/items/{sku}", "method": "GET", "delay": "500ms"})
    inv.reset()
    calls = [run.call(d, "inventory", "GET", f"/v1/items/sku-p{i}") for i in range(40)]
    got = d.wait([c for c, _ in calls], 40)
    inv.clear()
    st = inv.stats()
    classes = {}
    for c, _ in calls:
        classes[outcome(got[c][0])] = classes.get(outcome(got[c][0]), 0) + 1
    failed_fast = [s for c, _ in calls for r, s in [got[c]] if r and r.get("error", {}).get("class") == "pool_exhausted"]
    obs = {"bounded": st["peak_open"] <= 32 and failed_fast and max(failed_fast) < 0.6,
           "overflow": st["peak_open"] > 20 and classes.get("status 200") == 40,
           "h2": st["peak_open"] <= 2 and classes.get("status 200") == 40,
           "unbounded-wait": classes.get("status 200") == 40}
    want = expect.get("pool")
    run.check(want is None or obs.get(want), "40 callers, 500 ms per GET",
              f"peak {st['peak_open']} connections open, {classes}" +
              (f", pool_exhausted after at most {max(failed_fast):.2f}s" if failed_fast else ""))

    # --- close, shutdown ---------------------------------------------------
    before = inv.conns()["open"]
    d.send({"type": "close"})
    ok = d.expect("close_ok", 10)
    run.check(ok is not None, "close answered close_ok")
    end = time.monotonic() + 3
    while time.monotonic() < end and inv.conns()["open"] > 0:
        time.sleep(0.05)
    run.check(inv.conns()["open"] == 0, "close released the idle connections", f"{before} open before, {inv.conns()['open']} after")
    after = counts(d.proc.pid)
    run.check(after[0] <= before_call[0] + 4 and after[1] <= before_call[1] + 8,
              "after close, file descriptors and threads back near where they were before the first call",
              f"{after[0]} fds and {after[1]} threads, {before_call[0]} and {before_call[1]} before"
              " (poolproof's default tolerance: 4 fds, 8 threads)")
    with d.lock:
        twice = [i for i, a in d.answers.items() if len(a) > 1]
        unknown = [i for i in d.answers if i not in d.sent]
        missing = [i for i in d.sent if i not in d.answers]
    run.check(not twice and not unknown and not missing, "every call answered exactly once",
              f"{len(d.sent)} calls" + (f"; twice {twice}, unknown {unknown}, unanswered {missing}" if twice or unknown or missing else ""))
    run.check(not d.garbage, "only protocol lines on stdout", f"{d.garbage[:3]}" if d.garbage else "")
    t0 = time.monotonic()
    d.send({"type": "shutdown"})
    try:
        rc = d.proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        rc = None
    run.check(rc == 0, "shutdown: exit 0 within 5 s", f"exit {rc} after {time.monotonic() - t0:.2f}s")

    # EOF on stdin means shutdown too.
    e = Driver(run.args.cmd, run.args.stderr + ".eof" if run.args.stderr != "/dev/null" else "/dev/null")
    e.send({"type": "init", "protocol": 1, "services": services, "contract": {}})
    e.expect("init_ok", 30)
    t0 = time.monotonic()
    e.proc.stdin.close()
    try:
        rc = e.proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        rc = None
    e.kill()
    run.check(rc == 0, "EOF on stdin: exit 0 within 5 s", f"exit {rc} after {time.monotonic() - t0:.2f}s")


if __name__ == "__main__":
    main()
