#!/usr/bin/node
'use strict';
// axios configured to keep a contract: axios_typical.js, corrected. Each fix
// answers one flaw of the typical configuration, with axios 1.2.1 (Debian 12)
// and Node's own http/https agents, no other package:
//   - Bounded sockets that fail fast: maxSockets = maxTotalSockets = the
//     contract's max_conns, and a call queued in the agent for longer than
//     pool_wait is failed with POOL_EXHAUSTED instead of waiting without limit.
//   - Safe retries: a POST (or PATCH) is retried only when it carries an
//     Idempotency-Key; without one only a refused connection is retried (the
//     request never left). Statuses 429/500/502/503/504 and resets, timeouts
//     and refused connections are retried, up to max_attempts in all.
//   - Jittered, capped backoff: equal jitter (half fixed, half random) on a
//     doubling delay, capped per service.
//   - Retry-After honoured: the retry waits as asked, or the 429/503 is
//     returned when the wait would end past the call's deadline.
//   - A retry budget per service (retries at most 20% of calls, plus 5 a
//     second), so retries cannot multiply the load on a failing service.
//   - One deadline per call, the contract's request_timeout, through an
//     AbortSignal: it covers the wait for a socket, connect, every attempt,
//     the backoff and the body read (axios' own timeout is only an
//     inactivity timeout on the socket).
// The limits it keeps are read from axios_corrected.contract.json beside
// this file, so the contract is what the code does; the backoff and the
// budget are set here (TUNING, BUDGET_RATIO) and declared with the same
// values in the contract (backoff_base, backoff_cap, backoff_jitter 0.5 for
// equal jitter, retry_budget), which the retry checks hold them to.

const fs = require('fs');
const http = require('http');
const https = require('https');
const path = require('path');

const pp = require('./ppdriver');

const axios = pp.requireAxios();

const CONTRACT = path.join(__dirname, 'axios_corrected.contract.json');

// Per service: the backoff's first delay and cap, in ms.
const TUNING = {
  payment: { backoff: 100, backoffMax: 1000 },
  inventory: { backoff: 20, backoffMax: 200 },
  notification: { backoff: 20, backoffMax: 100 },
  default: { backoff: 50, backoffMax: 500 },
};
const BUDGET_RATIO = 0.2;
const BUDGET_PER_SECOND = 5;

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);
const RETRY_STATUSES = new Set([429, 500, 502, 503, 504]);

// failFast makes an Agent class that fails a request waiting in its queue
// for a socket longer than poolWaitMs (Node's agents queue without limit).
function failFast(AgentClass) {
  return class FailFastAgent extends AgentClass {
    constructor(options, poolWaitMs) {
      super(options);
      this.poolWaitMs = poolWaitMs;
    }

    addRequest(req, options, ...rest) {
      super.addRequest(req, options, ...rest);
      const queued = Object.values(this.requests).some((q) => q.includes(req));
      if (!queued) return; // it has a socket, or one is being made for it
      const timer = setTimeout(() => {
        for (const [name, q] of Object.entries(this.requests)) {
          const i = q.indexOf(req);
          if (i < 0) continue;
          q.splice(i, 1);
          if (q.length === 0) delete this.requests[name];
          if (req.destroyed) return; // aborted at its deadline while it waited
          const err = new Error(`pool exhausted: no free connection to ${name.split(':').slice(0, 2).join(':')} within ${this.poolWaitMs}ms`);
          err.code = 'POOL_EXHAUSTED';
          // What the agent itself does when it cannot make a socket: the
          // request fails with err ('error', then 'close').
          req.onSocket(null, err);
          return;
        }
      }, this.poolWaitMs);
      const clear = () => clearTimeout(timer);
      req.once('socket', clear);
      req.once('close', clear);
    }
  };
}

// RetryBudget: every call deposits BUDGET_RATIO of a retry, every retry
// withdraws one, BUDGET_PER_SECOND trickle in (Finagle's RetryBudget).
class RetryBudget {
  constructor(ratio, perSecond) {
    this.ratio = ratio; this.perSecond = perSecond;
    this.cap = Math.max(10, perSecond); this.balance = perSecond; this.last = Date.now();
  }

  refill() {
    const now = Date.now();
    this.balance = Math.min(this.cap, this.balance + ((now - this.last) / 1000) * this.perSecond);
    this.last = now;
  }

  deposit() { this.refill(); this.balance = Math.min(this.cap, this.balance + this.ratio); }

  withdraw() {
    this.refill();
    if (this.balance < 1) return false;
    this.balance -= 1;
    return true;
  }
}

class DeadlineError extends Error {
  constructor(ms, cause) {
    super(`deadline of ${ms}ms exceeded (axios: ${cause && cause.message})`);
    this.name = 'DeadlineError';
    this.code = 'ETIMEDOUT';
    this.cause = cause;
  }
}

function retryAfterMs(response) {
  const v = response && response.headers && response.headers['retry-after'];
  if (v === undefined || v === null) return undefined;
  if (/^\s*\d+\s*$/.test(v)) return parseInt(v, 10) * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

function newClient(contract, tuning, caFile) {
  const maxConns = contract.max_conns;
  const poolWaitMs = Math.round(pp.seconds(contract.pool_wait) * 1000);
  const requestTimeoutMs = Math.round(pp.seconds(contract.request_timeout) * 1000);
  const maxAttempts = contract.max_attempts;
  const budget = new RetryBudget(BUDGET_RATIO, BUDGET_PER_SECOND);

  const agentOptions = { keepAlive: true, maxSockets: maxConns, maxTotalSockets: maxConns, maxFreeSockets: maxConns };
  const httpAgent = new (failFast(http.Agent))(agentOptions, poolWaitMs);
  const httpsAgent = new (failFast(https.Agent))({ ...agentOptions, ca: caFile ? fs.readFileSync(caFile) : undefined }, poolWaitMs);
  const client = axios.create({ httpAgent, httpsAgent, timeout: requestTimeoutMs });

  client.interceptors.response.use(undefined, async (error) => {
    const config = error.config;
    if (!config || !config.deadline || (config.signal && config.signal.aborted)) throw error;
    const attempt = config.attempt || 1;
    if (attempt >= maxAttempts) throw error;
    const status = error.response && error.response.status;
    const cls = status ? 'status' : pp.classifyNodeError(error);
    if (!(RETRY_STATUSES.has(status) || ['reset', 'eof', 'timeout', 'connect'].includes(cls))) throw error;
    // A refused connection never carried the request; anything else might have.
    const keyed = IDEMPOTENT.has(config.method.toUpperCase()) || config.headers.has('Idempotency-Key');
    if (!keyed && cls !== 'connect') throw error;
    let wait = retryAfterMs(error.response);
    if (wait === undefined) {
      const delay = Math.min(tuning.backoffMax, tuning.backoff * 2 ** (attempt - 1));
      wait = delay / 2 + Math.random() * (delay / 2);
    }
    if (Date.now() + wait >= config.deadline) throw error; // give back what we have
    if (!budget.withdraw()) throw error;
    await new Promise((resolve) => setTimeout(resolve, wait));
    config.attempt = attempt + 1;
    return client(config);
  });

  return {
    httpAgent,
    httpsAgent,
    async call(call) {
      budget.deposit();
      const controller = new AbortController();
      const timer = setTimeout(() => controller.abort(), requestTimeoutMs);
      try {
        return await client.request({
          method: call.method, url: call.url, headers: call.headers, data: call.body, responseType: 'arraybuffer',
          signal: controller.signal, deadline: Date.now() + requestTimeoutMs, attempt: 1,
        });
      } catch (err) {
        if (controller.signal.aborted) throw new DeadlineError(requestTimeoutMs, err);
        if (!err.response) throw err;
        return err.response; // axios rejects non-2xx statuses; the exchange itself completed
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

const kept = JSON.parse(fs.readFileSync(CONTRACT, 'utf8'));
const services = new Map();

const driver = {
  name: 'node-axios-corrected',
  library: 'axios',
  version: `${axios.VERSION} (node ${process.version})`,

  async init(list, contract) {
    pp.warnIfTighter(contract, kept);
    for (const svc of list) {
      services.set(svc.name, newClient(pp.contractFor(kept, svc.name), TUNING[svc.name] || TUNING.default, svc.ca_file));
    }
  },

  async call(call) {
    const svc = services.get(call.service);
    if (!svc) throw new Error(`unknown service ${JSON.stringify(call.service)}: init named ${[...services.keys()]}`);
    const response = await svc.call(call);
    return { status: response.status, rawHeaders: pp.rawHeadersOf(response), body: Buffer.from(response.data || []) };
  },

  async close() {
    // Free (idle) sockets only; sockets carrying a call finish it.
    for (const { httpAgent, httpsAgent } of services.values()) {
      for (const agent of [httpAgent, httpsAgent]) {
        for (const sockets of Object.values(agent.freeSockets)) for (const s of sockets) s.destroy();
      }
    }
  },

  classify(err) {
    if (err instanceof DeadlineError) return 'timeout';
    return pp.classifyNodeError(err);
  },
};

pp.serve(driver);
