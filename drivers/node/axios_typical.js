#!/usr/bin/node
'use strict';
// axios as a typical Node service configures it, certified as it is: one
// axios instance per service with keep-alive agents and the retry
// interceptor found in countless codebases and answers.
//
//   const httpsAgent = new https.Agent({ keepAlive: true, maxSockets: 50, maxFreeSockets: 20 });
//   const client = axios.create({ httpAgent, httpsAgent, timeout: 30000 });
//   client.interceptors.response.use(undefined, async (error) => {
//     // up to 3 retries on 429/5xx, waiting 2^n s, whatever the method
//   });
//
// Nothing here simulates a flaw; with axios 1.2.1 (Debian 12) on Node these
// are the flaws of this configuration, which poolproof should find:
//   - Any method is retried: a POST charge without an Idempotency-Key that
//     the server committed before answering 500 is charged again.
//   - The delay is 2, 4, 8 s: no jitter, no cap below 8 s, and Retry-After
//     is not read at all (it asks for 1 s, the client waits 2; it asks for
//     30 s, the client waits 2).
//   - timeout: 30000 is an inactivity timeout on the socket (req.setTimeout),
//     not a deadline: a body that trickles in never times out, a call may
//     take 4 attempts x 30 s + 14 s of delays, and time spent queued in the
//     agent for a socket is not counted at all.
//   - maxSockets: 50 bounds the sockets per host, but calls beyond it wait
//     in the agent's queue without limit: nothing fails fast.

const fs = require('fs');
const http = require('http');
const https = require('https');

const pp = require('./ppdriver');

const axios = pp.requireAxios();

function newClient(caFile) {
  const httpAgent = new http.Agent({ keepAlive: true, maxSockets: 50, maxFreeSockets: 20 });
  const httpsAgent = new https.Agent({
    keepAlive: true, maxSockets: 50, maxFreeSockets: 20, ca: caFile ? fs.readFileSync(caFile) : undefined,
  });
  const client = axios.create({ httpAgent, httpsAgent, timeout: 30000 });

  client.interceptors.response.use(undefined, async (error) => {
    const config = error.config;
    const status = error.response && error.response.status;
    if (!config || !(status === 429 || status >= 500)) throw error;
    config.__retryCount = (config.__retryCount || 0) + 1;
    if (config.__retryCount > 3) throw error;
    await new Promise((resolve) => setTimeout(resolve, 2 ** config.__retryCount * 1000));
    return client(config);
  });
  return { client, httpAgent, httpsAgent };
}

const services = new Map();

const driver = {
  name: 'node-axios-typical',
  library: 'axios',
  version: `${axios.VERSION} (node ${process.version})`,

  async init(list) {
    for (const svc of list) services.set(svc.name, newClient(svc.ca_file));
  },

  async call(call) {
    const svc = services.get(call.service);
    if (!svc) throw new Error(`unknown service ${JSON.stringify(call.service)}: init named ${[...services.keys()]}`);
    let response;
    try {
      response = await svc.client.request({
        method: call.method, url: call.url, headers: call.headers, data: call.body, responseType: 'arraybuffer',
      });
    } catch (err) {
      // axios rejects non-2xx statuses; the exchange itself completed.
      if (!err.response) throw err;
      response = err.response;
    }
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
};

pp.serve(driver);
