'use strict';
// The poolproof driver protocol (v1) for Node drivers: the plumbing every
// driver shares, so that each driver file shows only its client.
//
// poolproof writes one JSON object per line on stdin (init, call, close,
// shutdown) and reads one per line on stdout (init_ok, result, close_ok).
// Calls are answered in any order as they finish. Each answer is one
// process.stdout.write of a whole line (synchronous for pipes on Linux), and
// console.log is pointed at stderr so nothing else reaches stdout. See
// docs/driver-protocol.md.
//
// A driver is an object with name, library, version and
//   async init(services, contract)  services: [{name, base_url, ca_file}]
//   async call(call)                -> {status, rawHeaders, body: Buffer}, or throws
//   async close()                   release idle pooled connections
//   classify(err)                   -> one of CLASSES (default: classifyNodeError)
// run with serve(driver).

const crypto = require('crypto');
const path = require('path');
const readline = require('readline');

const PROTOCOL = 1;
const CLASSES = ['timeout', 'connect', 'reset', 'eof', 'tls', 'pool_exhausted', 'circuit_open', 'canceled', 'other'];

console.log = console.error;
console.info = console.error;

// requireAxios loads axios: from the usual module paths first (npm, or
// Debian's own nodejs, whose search path includes /usr/share/nodejs), then
// from where Debian's node-axios package installs it, for a nodejs that does
// not search there (NodeSource's). NODE_PATH=/usr/share/nodejs works too.
function requireAxios() {
  try {
    return require('axios');
  } catch (err) {
    if (err.code !== 'MODULE_NOT_FOUND') throw err;
    // Debian's node-axios: the CommonJS build ("exports" require condition).
    return require(path.join('/usr/share/nodejs', 'axios', 'dist', 'node', 'axios.cjs'));
  }
}

function send(msg) {
  process.stdout.write(JSON.stringify(msg) + '\n');
}

// canonical is Go's canonical header form (textproto.CanonicalMIMEHeaderKey):
// Node gives header names in lower case.
function canonical(name) {
  return name.split('-').map((p) => p.charAt(0).toUpperCase() + p.slice(1).toLowerCase()).join('-');
}

function resultOf(id, res) {
  const headers = {};
  for (let i = 0; i + 1 < res.rawHeaders.length; i += 2) {
    const name = canonical(res.rawHeaders[i]);
    (headers[name] = headers[name] || []).push(res.rawHeaders[i + 1]);
  }
  return {
    type: 'result', id, status: res.status, headers,
    body_len: res.body.length,
    body_sha256: crypto.createHash('sha256').update(res.body).digest('hex'),
  };
}

// rawHeadersOf returns the response's headers as [name, value, ...], the
// way Node received them (repeats kept), from an axios response.
function rawHeadersOf(response) {
  const msg = response.request && response.request.res;
  if (msg && Array.isArray(msg.rawHeaders)) return msg.rawHeaders;
  const out = [];
  for (const [name, value] of Object.entries(response.headers || {})) {
    for (const v of Array.isArray(value) ? value : [value]) out.push(name, String(v));
  }
  return out;
}

function errorOf(id, cls, err) {
  const name = (err && err.isAxiosError && 'AxiosError') || (err && (err.name || (err.constructor && err.constructor.name))) || 'Error';
  const code = err && err.code ? ` [${err.code}]` : '';
  const message = `${name}${code}: ${err && err.message !== undefined ? err.message : String(err)}`;
  return { type: 'result', id, error: { class: CLASSES.includes(cls) ? cls : 'other', message: message.slice(0, 2000) } };
}

const TLS_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'SELF_SIGNED_CERT_IN_CHAIN', 'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_GET_ISSUER_CERT', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID',
  'CERT_UNTRUSTED', 'CERT_REJECTED', 'HOSTNAME_MISMATCH', 'EPROTO',
]);

// classifyNodeError maps an error from Node's http/https/net/tls (as axios
// passes it on, code kept) to a protocol class.
function classifyNodeError(err) {
  const code = (err && (err.code || (err.cause && err.cause.code))) || '';
  const message = String((err && err.message) || '');
  if (code === 'POOL_EXHAUSTED') return 'pool_exhausted';
  if (code === 'ERR_CANCELED') return 'canceled';
  if (code === 'ETIMEDOUT' || code === 'ESOCKETTIMEDOUT' || (err && err.name === 'TimeoutError') ||
      (code === 'ECONNABORTED' && /timeout/i.test(message))) return 'timeout';
  if (['ECONNREFUSED', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'EADDRNOTAVAIL'].includes(code)) return 'connect';
  if (TLS_CODES.has(code) || code.startsWith('ERR_TLS_') || code.startsWith('ERR_SSL_')) return 'tls';
  // The peer closed the connection early (a FIN, not a reset): Node says
  // "socket hang up" before the response, "aborted" in the body. axios 1.2.1
  // reports a body cut short (the response stream's 'aborted' event) as
  // "maxContentLength size of -1 exceeded".
  if (/socket hang up|^aborted$/i.test(message) || code === 'ERR_STREAM_PREMATURE_CLOSE' ||
      (code === 'ERR_BAD_RESPONSE' && /maxContentLength size of -1/.test(message))) return 'eof';
  if (['ECONNRESET', 'EPIPE', 'ECONNABORTED'].includes(code)) return 'reset';
  return 'other';
}

function parseCall(msg) {
  const headers = {};
  for (const [name, values] of Object.entries(msg.headers || {})) {
    headers[name] = Array.isArray(values) ? values.join(', ') : String(values);
  }
  return {
    id: msg.id, service: msg.service || '', method: msg.method || 'GET', url: msg.url, headers,
    body: msg.body ? Buffer.from(msg.body, 'base64') : undefined,
  };
}

// seconds reads a contract duration: nanoseconds (init's JSON) or a Go
// duration string such as "250ms" or "1m30s" (contract files).
function seconds(v) {
  if (v === undefined || v === null || v === '' || v === '0') return 0;
  if (typeof v === 'number') return v / 1e9;
  const units = { ns: 1e-9, us: 1e-6, 'µs': 1e-6, 'μs': 1e-6, ms: 1e-3, s: 1, m: 60, h: 3600 };
  const re = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/g;
  let total = 0; let matched = '';
  for (const m of String(v).matchAll(re)) { total += parseFloat(m[1]) * units[m[2]]; matched += m[0]; }
  if (!matched || matched !== String(v).trim()) throw new Error(`not a duration: ${JSON.stringify(v)} (want e.g. "250ms")`);
  return total;
}

// contractFor returns one service's contract from a Profile
// ({default, services}): its own entry, else the default.
function contractFor(profile, service) {
  return (profile.services && profile.services[service]) || profile.default || {};
}

// warnIfTighter logs where the contract poolproof holds the driver to
// (given, from init) is tighter than the one it keeps (its own file).
function warnIfTighter(given, kept) {
  if (!given || (!given.default && !given.services)) return;
  for (const svc of Object.keys(kept.services || {}).sort()) {
    const g = contractFor(given, svc); const k = contractFor(kept, svc);
    for (const f of ['max_conns', 'max_attempts', 'request_timeout', 'pool_wait']) {
      if (!g[f] || !k[f]) continue;
      const counted = f === 'max_conns' || f === 'max_attempts';
      const gv = counted ? g[f] : seconds(g[f]); const kv = counted ? k[f] : seconds(k[f]);
      if (gv < kv) console.error(`${svc}: poolproof holds this driver to ${f}=${counted ? gv : gv + 's'}, tighter than the ${counted ? kv : kv + 's'} it keeps`);
    }
  }
}

// exitAfter exits once the control messages before it are answered (a
// close_ok already due is not lost), within a second in any case; calls in
// flight are abandoned.
function exitAfter(control) {
  setTimeout(() => process.exit(0), 1000).unref();
  control.finally(() => process.exit(0));
}

function serve(driver) {
  const classify = (err) => {
    try { return (driver.classify || classifyNodeError)(err); } catch (_) { return 'other'; }
  };
  const runCall = async (msg) => {
    let reply;
    try {
      reply = resultOf(msg.id, await driver.call(parseCall(msg)));
    } catch (err) {
      reply = errorOf(msg.id, classify(err), err);
    }
    send(reply);
  };
  // Requests run concurrently; control messages wait for the ones before them.
  let control = Promise.resolve();
  const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
  rl.on('line', (line) => {
    let msg;
    try {
      msg = JSON.parse(line);
      if (!msg || typeof msg !== 'object') throw new Error('not an object');
    } catch (err) {
      console.error(`ignoring a line that is not a JSON object: ${err.message}: ${line.slice(0, 200)}`);
      return;
    }
    switch (msg.type) {
      case 'call':
        if (msg.id === undefined) { console.error(`ignoring a call without an id: ${line.slice(0, 200)}`); return; }
        control.then(() => runCall(msg));
        return;
      case 'init':
        if ((msg.protocol || PROTOCOL) !== PROTOCOL) console.error(`poolproof speaks protocol ${msg.protocol}; this driver speaks ${PROTOCOL}`);
        control = control.then(async () => {
          await driver.init(msg.services || [], msg.contract || {});
          send({ type: 'init_ok', driver: driver.name, library: driver.library, version: driver.version });
        }).catch((err) => { console.error(`init failed: ${err.stack || err}`); process.exit(1); });
        return;
      case 'close':
        control = control.then(async () => {
          try { await driver.close(); } catch (err) { console.error(`close: ${err.stack || err}`); }
          send({ type: 'close_ok' });
        });
        return;
      case 'shutdown':
        exitAfter(control);
        return;
      default:
        console.error(`ignoring a message of unknown type ${JSON.stringify(msg.type)}`);
    }
  });
  rl.on('close', () => exitAfter(control)); // EOF on stdin means shutdown
}

module.exports = {
  CLASSES, requireAxios, send, canonical, rawHeadersOf, classifyNodeError, seconds, contractFor, warnIfTighter, serve,
};
