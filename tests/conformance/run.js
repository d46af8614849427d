#!/usr/bin/env node
// The conformance driver: one SDK flow against a fresh `twinfleet hub` process.
//
//   node run.js --twinfleet build/twinfleet --modules build/conformance/node_modules \
//               --flow azure_device [--auth open|strict] [--https-port 0|443] [--timeout 90]
//
// It writes a CA, a server certificate and client certificates into a temporary folder, starts
// the hub there on 127.0.0.1 (MQTT/TLS on a free port, HTTPS on a free port or on 443), waits
// for hub.json, then runs flows/<flow>.js as a child node process that trusts the hub's CA
// through NODE_EXTRA_CA_CERTS and finds the SDKs through NODE_PATH. Every wait is bounded: the
// flow is killed after --timeout seconds. The hub is stopped with SIGTERM and must exit 0; on
// any failure both processes are killed and their output is printed. Exit 0 means the flow
// passed and the hub stopped cleanly.
'use strict';

const childProcess = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');

// The client certificates every flow may use: AWS things (CN = thing name), a back end that
// may act for every thing, and an Azure device authenticating by X.509 CA.
const CLIENT_NAMES = ['conformance-thing', 'conformance-thing-v2', 'twinfleet-backend'];

function parseArgs(argv) {
  const args = { auth: 'open', httpsPort: '0', timeout: 90 };
  for (let i = 0; i < argv.length; i++) {
    const next = () => {
      if (i + 1 >= argv.length) throw new Error(`${argv[i]} needs a value`);
      return argv[++i];
    };
    switch (argv[i]) {
      case '--twinfleet': args.twinfleet = next(); break;
      case '--modules': args.modules = next(); break;
      case '--flow': args.flow = next(); break;
      case '--auth': args.auth = next(); break;
      case '--https-port': args.httpsPort = next(); break;
      case '--timeout': args.timeout = Number(next()); break;
      default: throw new Error(`unknown argument ${argv[i]}`);
    }
  }
  for (const required of ['twinfleet', 'modules', 'flow']) {
    if (!args[required]) throw new Error(`--${required} is required`);
  }
  return args;
}

// Children still running when this process exits for any reason get SIGKILL: nothing outlives
// the driver.
const running = new Set();
const tempDirs = new Set();
process.on('exit', () => {
  for (const child of running) {
    try { child.kill('SIGKILL'); } catch (_) { /* already gone */ }
  }
  for (const dir of tempDirs) fs.rmSync(dir, { recursive: true, force: true });
});
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(signal, () => {
    console.error(`conformance: ${signal} received, stopping`);
    process.exit(1);
  });
}

// Starts `program` and collects its output; `exited` resolves to {code, signal}.
function start(program, argv, options = {}) {
  const child = childProcess.spawn(program, argv, { stdio: ['ignore', 'pipe', 'pipe'], ...options });
  running.add(child);
  const record = { child, out: '', err: '' };
  child.stdout.on('data', (d) => { record.out += d; });
  child.stderr.on('data', (d) => { record.err += d; });
  record.exited = new Promise((resolve) => {
    child.on('error', (error) => { running.delete(child); resolve({ code: -1, signal: null, error }); });
    child.on('close', (code, signal) => { running.delete(child); resolve({ code, signal }); });
  });
  return record;
}

function timeout(ms, value) {
  let timer;
  const promise = new Promise((resolve) => { timer = setTimeout(() => resolve(value), ms); });
  promise.cancel = () => clearTimeout(timer);
  return promise;
}

// Polls `ready` every 50 ms until it holds, the process exits or `ms` pass.
async function waitFor(record, ready, ms) {
  const deadline = Date.now() + ms;
  let exited = false;
  record.exited.then(() => { exited = true; });
  while (Date.now() < deadline) {
    if (ready()) return true;
    if (exited) return false;
    await timeout(50);
  }
  return ready();
}

async function stop(record, graceMs) {
  if (record.child.exitCode !== null || record.child.signalCode !== null) return record.exited;
  record.child.kill('SIGTERM');
  const t = timeout(graceMs, 'timeout');
  const result = await Promise.race([record.exited, t]);
  t.cancel();
  if (result !== 'timeout') return result;
  record.child.kill('SIGKILL');
  const killed = await record.exited;
  return { ...killed, timedOut: true };
}

function dump(name, record) {
  console.error(`----- ${name} stdout -----\n${record.out}----- ${name} stderr -----\n${record.err}-----`);
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const twinfleet = path.resolve(args.twinfleet);
  const modules = path.resolve(args.modules);
  const flow = path.join(__dirname, 'flows', `${args.flow}.js`);
  if (!fs.existsSync(flow)) throw new Error(`no flow ${flow}`);
  if (!fs.existsSync(modules)) {
    throw new Error(`no SDKs in ${modules}: run tests/conformance/install.sh ${path.dirname(modules)} first`);
  }

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `twinfleet-conformance-${args.flow}-`));
  tempDirs.add(dir);
  let hub;
  let passed = false;
  try {
    // Client certificates first: the hub then reuses the same CA.
    const certs = childProcess.spawnSync(twinfleet, ['certs', dir, ...CLIENT_NAMES.flatMap((n) => ['--client', n])],
                                         { encoding: 'utf8', timeout: 30000 });
    if (certs.status !== 0) {
      throw new Error(`twinfleet certs failed (${certs.status}): ${certs.stdout}${certs.stderr}`);
    }

    hub = start(twinfleet, ['hub', '--certs', dir, '--listen-mqtts', '127.0.0.1:0',
                            '--listen-https', `127.0.0.1:${args.httpsPort}`,
                            '--auth', args.auth]);
    const ready = await waitFor(hub, () => hub.out.includes('twinfleet hub ready'), 20000);
    if (!ready) {
      dump('hub', hub);
      throw new Error('the hub did not report ready within 20 s');
    }

    const env = {
      ...process.env,
      NODE_PATH: modules,
      NODE_EXTRA_CA_CERTS: path.join(dir, 'ca.pem'),
      TWINFLEET_HUB_JSON: path.join(dir, 'hub.json'),
      TWINFLEET_CERTS: dir,
    };
    console.log(`conformance: flow ${args.flow}, hub in ${dir} (${args.auth} auth)`);
    const child = start(process.execPath, [flow], { env });
    // The flow's own output goes straight through, so a passing run shows what it checked.
    child.child.stdout.on('data', (d) => process.stdout.write(d));
    child.child.stderr.on('data', (d) => process.stderr.write(d));
    const t = timeout(args.timeout * 1000, 'timeout');
    const result = await Promise.race([child.exited, t]);
    t.cancel();
    if (result === 'timeout') {
      await stop(child, 2000);
      dump('hub', hub);
      throw new Error(`flow ${args.flow} did not finish within ${args.timeout} s`);
    }
    if (result.code !== 0) {
      dump('hub', hub);
      throw new Error(`flow ${args.flow} failed (exit ${result.code}${result.signal ? `, ${result.signal}` : ''})`);
    }

    const stopped = await stop(hub, 10000);
    if (stopped.timedOut || stopped.code !== 0) {
      dump('hub', hub);
      throw new Error(`the hub did not stop cleanly on SIGTERM (exit ${stopped.code}, signal ${stopped.signal})`);
    }
    passed = true;
  } finally {
    if (hub && !passed) await stop(hub, 5000);
    fs.rmSync(dir, { recursive: true, force: true });
  }
  console.log(`conformance: flow ${args.flow} passed`);
}

main().then(() => process.exit(0), (error) => {
  console.error(`conformance: FAILED: ${error.message}`);
  process.exit(1);
});
