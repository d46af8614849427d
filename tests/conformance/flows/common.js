// What every conformance flow shares: the hub's hub.json, bounded waits, logged steps, and the
// hub's REST service APIs (Azure SAS, AWS SigV4) written from the documents, not through
// twinfleet's code, so that a flow checks the hub from the outside.
//
// A flow runs under run.js, which sets TWINFLEET_HUB_JSON (the running hub's hub.json),
// TWINFLEET_CERTS (its folder, with client-<CN>.pem/.key) and NODE_EXTRA_CA_CERTS (its CA).
'use strict';

const assert = require('assert');
const crypto = require('crypto');
const fs = require('fs');
const https = require('https');
const path = require('path');

function hubInfo() {
  const file = process.env.TWINFLEET_HUB_JSON;
  if (!file) throw new Error('TWINFLEET_HUB_JSON is not set: run flows through run.js');
  const info = JSON.parse(fs.readFileSync(file, 'utf8'));
  const port = (protocol) => {
    const e = info.endpoints.find((x) => x.protocol === protocol);
    return e ? e.port : undefined;
  };
  return { ...info, mqttsPort: port('mqtts'), httpsPort: port('https'), certsDir: path.dirname(file) };
}

function clientCert(commonName) {
  const dir = process.env.TWINFLEET_CERTS;
  return { cert: path.join(dir, `client-${commonName}.pem`), key: path.join(dir, `client-${commonName}.key`) };
}

// Rejects with a message naming `what` when `promise` takes longer than `ms`.
function within(ms, what, promise) {
  let timer;
  const t = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, t]).finally(() => clearTimeout(timer));
}

// A callback-style SDK call as a bounded promise: `fn(cb)` with cb(err, ...results).
function call(what, fn, ms = 10000) {
  return within(ms, what, new Promise((resolve, reject) => {
    fn((err, ...results) => (err ? reject(err) : resolve(results.length <= 1 ? results[0] : results)));
  }));
}

// The next `event` of `emitter` (its arguments as an array), bounded.
function nextEvent(emitter, event, what, ms = 10000, filter = () => true) {
  return within(ms, what, new Promise((resolve) => {
    const listener = (...args) => {
      if (!filter(...args)) return;
      emitter.removeListener(event, listener);
      resolve(args);
    };
    emitter.on(event, listener);
  }));
}

// A FIFO of pushed values that a flow awaits one at a time, bounded.
class Inbox {
  constructor(name) { this.name = name; this.items = []; this.waiters = []; }
  push(value) {
    const waiter = this.waiters.shift();
    if (waiter) waiter(value); else this.items.push(value);
  }
  next(ms = 10000) {
    if (this.items.length > 0) return Promise.resolve(this.items.shift());
    return within(ms, `a message on ${this.name}`, new Promise((resolve) => this.waiters.push(resolve)));
  }
  get size() { return this.items.length; }
}

let stepNumber = 0;
async function step(name, fn) {
  stepNumber += 1;
  const started = Date.now();
  try {
    const result = await fn();
    console.log(`  ok ${stepNumber} - ${name} (${Date.now() - started} ms)`);
    return result;
  } catch (error) {
    console.log(`  not ok ${stepNumber} - ${name}`);
    throw error;
  }
}

// Runs a flow's main and exits 0 on success, 1 with the reason otherwise.
function runFlow(name, main) {
  console.log(`flow ${name}`);
  main().then(() => {
    console.log(`flow ${name}: all ${stepNumber} steps passed`);
    process.exit(0);
  }, (error) => {
    console.error(`flow ${name} FAILED: ${error && error.stack ? error.stack : error}`);
    if (error && error.responseBody) console.error(`response body: ${error.responseBody}`);
    process.exit(1);
  });
}

// One HTTPS request to the hub; resolves {status, headers, body (text), json (parsed or undefined)}.
function request(port, { method, path: target, headers = {}, body }) {
  return within(10000, `${method} ${target}`, new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
    const h = { ...headers };
    if (payload) {
      h['content-length'] = payload.length;
      if (!h['content-type']) h['content-type'] = 'application/json';
    }
    const req = https.request({ host: '127.0.0.1', servername: 'localhost', port, method, path: target, headers: h },
                              (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { text += d; });
      res.on('end', () => {
        let parsed;
        try { parsed = text ? JSON.parse(text) : undefined; } catch (_) { parsed = undefined; }
        resolve({ status: res.statusCode, headers: res.headers, body: text, json: parsed });
      });
    });
    req.on('error', reject);
    if (payload) req.write(payload);
    req.end();
  }));
}

// --- Azure IoT Hub service side ---------------------------------------------------------------

// A SharedAccessSignature for `resource` (IoT Hub's format: sr, sig, se, and skn for a policy).
function azureSas(resource, keyBase64, policy, ttlSeconds = 3600) {
  const se = Math.floor(Date.now() / 1000) + ttlSeconds;
  const sr = encodeURIComponent(resource);
  const sig = crypto.createHmac('sha256', Buffer.from(keyBase64, 'base64')).update(`${sr}\n${se}`).digest('base64');
  let token = `SharedAccessSignature sr=${sr}&sig=${encodeURIComponent(sig)}&se=${se}`;
  if (policy) token += `&skn=${policy}`;
  return token;
}

const AZURE_API = 'api-version=2021-04-12';

function azureService(hub, policyName = 'iothubowner') {
  const policy = hub.azure.policies.find((p) => p.name === policyName);
  assert.ok(policy, `hub.json lists no policy ${policyName}`);
  const authorization = () => azureSas(hub.azure.host_name, policy.primary_key, policy.name);
  const send = (method, target, body, headers = {}) => request(hub.httpsPort, {
    method, path: `${target}${target.includes('?') ? '&' : '?'}${AZURE_API}`, body,
    headers: { authorization: authorization(), ...headers },
  });
  return {
    getTwin: (id) => send('GET', `/twins/${encodeURIComponent(id)}`),
    patchTwin: (id, patch, etag = '*') => send('PATCH', `/twins/${encodeURIComponent(id)}`, patch, { 'if-match': etag }),
    invokeMethod: (id, methodName, payload, responseTimeoutInSeconds = 10) =>
      send('POST', `/twins/${encodeURIComponent(id)}/methods`,
           { methodName, payload, responseTimeoutInSeconds, connectTimeoutInSeconds: 0 }),
    putDevice: (id, body) => send('PUT', `/devices/${encodeURIComponent(id)}`, body),
    getDevice: (id) => send('GET', `/devices/${encodeURIComponent(id)}`),
  };
}

// --- AWS IoT data plane -----------------------------------------------------------------------

function sha256Hex(data) { return crypto.createHash('sha256').update(data).digest('hex'); }
function hmac(key, data) { return crypto.createHmac('sha256', key).update(data).digest(); }
// RFC 3986 unreserved characters stay; everything else is %XX (SigV4's UriEncode).
function uriEncode(text) {
  return encodeURIComponent(text).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

// Signs a request with SigV4 (service iotdata), as the AWS SDKs do for the IoT data plane.
function sigv4Headers(hub, method, pathOnly, query, payload) {
  const now = new Date();
  const amzDate = now.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
  const day = amzDate.slice(0, 8);
  const host = `localhost:${hub.httpsPort}`;
  const canonicalQuery = Object.keys(query).sort().map((k) => `${uriEncode(k)}=${uriEncode(query[k])}`).join('&');
  const payloadHash = sha256Hex(payload);
  const headers = { host, 'x-amz-date': amzDate, 'x-amz-content-sha256': payloadHash };
  const signedHeaders = Object.keys(headers).sort();
  const canonicalHeaders = signedHeaders.map((h) => `${h}:${headers[h]}\n`).join('');
  const canonicalPath = pathOnly.split('/').map(uriEncode).join('/');
  const canonicalRequest = [method, canonicalPath, canonicalQuery, canonicalHeaders, signedHeaders.join(';'),
                            payloadHash].join('\n');
  const scope = `${day}/${hub.aws.region}/iotdata/aws4_request`;
  const stringToSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256Hex(canonicalRequest)].join('\n');
  let key = hmac(`AWS4${hub.aws.secret_access_key}`, day);
  key = hmac(key, hub.aws.region);
  key = hmac(key, 'iotdata');
  key = hmac(key, 'aws4_request');
  const signature = crypto.createHmac('sha256', key).update(stringToSign).digest('hex');
  return {
    ...headers,
    authorization: `AWS4-HMAC-SHA256 Credential=${hub.aws.access_key_id}/${scope}, ` +
                   `SignedHeaders=${signedHeaders.join(';')}, Signature=${signature}`,
  };
}

function awsDataPlane(hub) {
  const send = (method, pathOnly, query = {}, body) => {
    const payload = body === undefined ? '' : JSON.stringify(body);
    const qs = Object.keys(query).map((k) => `${uriEncode(k)}=${uriEncode(query[k])}`).join('&');
    return request(hub.httpsPort, {
      method, path: qs ? `${pathOnly}?${qs}` : pathOnly, body: body === undefined ? undefined : payload,
      headers: sigv4Headers(hub, method, pathOnly, query, payload),
    });
  };
  const q = (name) => (name ? { name } : {});
  return {
    getShadow: (thing, name) => send('GET', `/things/${thing}/shadow`, q(name)),
    updateShadow: (thing, document, name) => send('POST', `/things/${thing}/shadow`, q(name), document),
    deleteShadow: (thing, name) => send('DELETE', `/things/${thing}/shadow`, q(name)),
  };
}

module.exports = {
  assert, hubInfo, clientCert, within, call, nextEvent, Inbox, step, runFlow, request, azureSas, azureService,
  awsDataPlane,
};
