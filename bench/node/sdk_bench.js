#!/usr/bin/env node
// The baseline of bench/fleet_bench.cpp: what people run today — one Node.js process opening many
// clients of the official SDK (azure-iot-device + azure-iot-device-mqtt, MQTT over TLS) — doing
// the fleet engine's workload against the same `twinfleet hub`:
//
//   1. all clients open at once (connect, SAS with a key derived from the hub's group key) and
//      get their twin (the SDK subscribes to the twin response topic first);
//   2. idle for --idle seconds, keep-alive --keepalive seconds;
//   3. each client reports {seq: n} every 1/--rate seconds, waiting for the hub's
//      acknowledgement before its next (as twinfleet's devices do), for --report seconds.
//
// It measures nothing itself: at each phase boundary it prints `mark NAME` (after gc(), run with
// --expose-gc, where RSS is sampled) and waits 300 ms (not at the report window's ends) so the reader — fleet_bench — samples /proc/PID of this
// process and of the hub at that point, as it samples the twinfleet run. Finally it prints
// `result {json}` with the counts (updates completed inside the report window) and exits.
// `error TEXT` reports a failure. Every wait is bounded; the SDKs come from NODE_PATH (the
// conformance install: tests/conformance/install.sh DIR, versions in bench/node/package.json).
//
//   NODE_PATH=build/conformance-sdks/node_modules NODE_EXTRA_CA_CERTS=<hub certs>/ca.pem \
//     node --expose-gc bench/node/sdk_bench.js --hub-json <hub certs>/hub.json --clients 300 \
//     [--idle 10] [--report 10] [--rate 20] [--keepalive 10]
'use strict';

const crypto = require('crypto');
const fs = require('fs');
const { Client } = require('azure-iot-device');
const { Mqtt } = require('azure-iot-device-mqtt');

function parseArgs(argv) {
  const args = { clients: 300, idle: 10, report: 10, rate: 20, keepalive: 10 };
  for (let i = 0; i < argv.length; i++) {
    const next = () => {
      if (i + 1 >= argv.length) throw new Error(`${argv[i]} needs a value`);
      return argv[++i];
    };
    switch (argv[i]) {
      case '--hub-json': args.hubJson = next(); break;
      case '--clients': args.clients = Number(next()); break;
      case '--idle': args.idle = Number(next()); break;
      case '--report': args.report = Number(next()); break;
      case '--rate': args.rate = Number(next()); break;
      case '--keepalive': args.keepalive = Number(next()); break;
      default: throw new Error(`unknown argument ${argv[i]}`);
    }
  }
  if (!args.hubJson) throw new Error('--hub-json is required');
  return args;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function within(ms, what, promise) {
  let timer;
  const t = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, t]).finally(() => clearTimeout(timer));
}

// `collect`: gc() first, where the reader samples RSS; not inside the CPU windows' ends.
async function mark(name, collect = false) {
  if (collect && global.gc) global.gc();
  process.stdout.write(`mark ${name}\n`);
  await sleep(300);
}

// DPS group enrollment derivation, as the hub's --auth open expects (docs/HUB.md).
function deviceKey(groupKey, deviceId) {
  return crypto.createHmac('sha256', Buffer.from(groupKey, 'base64')).update(deviceId).digest('base64');
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const hub = JSON.parse(fs.readFileSync(args.hubJson, 'utf8'));
  const mqtts = hub.endpoints.find((e) => e.protocol === 'mqtts');
  if (!mqtts) throw new Error('the hub has no mqtts listener');
  const sample = hub.azure.sample_device;
  if (deviceKey(hub.azure.group_key, sample.device_id) !== sample.key) {
    throw new Error('the group key derivation does not give hub.json\'s sample device key');
  }
  const ids = Array.from({ length: args.clients }, (_, i) => `sdk-${String(i).padStart(5, '0')}`);
  await mark('loaded', true);

  // 1. Connect + getTwin, all at once.
  const clients = ids.map((id) => {
    const cs = `HostName=${hub.azure.host_name}:${mqtts.port};DeviceId=${id};SharedAccessKey=${deviceKey(hub.azure.group_key, id)}`;
    const client = Client.fromConnectionString(cs, Mqtt);
    client.on('error', () => {});
    return client;
  });
  const twins = await within(120000, 'connect + getTwin of every client', Promise.all(clients.map(async (client) => {
    await client.setOptions({ keepalive: args.keepalive });
    await client.open();
    return client.getTwin();
  })));
  await mark('connected');

  // 2. Idle.
  await mark('idle_start', true);
  await sleep(args.idle * 1000);
  await mark('idle_end');

  // 3. Reported updates at a fixed rate per client, each awaiting its acknowledgement.
  let inWindow = 0;
  let failed = 0;
  let measuring = false;
  let stopping = false;
  const period = 1000 / args.rate;
  const loops = twins.map(async (twin, i) => {
    let next = Date.now() + (period * i) / twins.length;  // spread the clients over one period
    for (let seq = 0; !stopping; seq++) {
      const wait = next - Date.now();
      if (wait > 0) await sleep(wait);
      next += period;
      // No timer per update (it would be charged to the SDK): the SDK's own operation timeout
      // bounds each update, and the phase as a whole is bounded below.
      const ok = await new Promise((resolve) => {
        twin.properties.reported.update({ seq }, (err) => resolve(!err));
      });
      if (!ok) failed++;
      else if (measuring) inWindow++;
    }
  });
  await sleep(2000);  // warm-up at the full rate
  measuring = true;
  process.stdout.write('mark report_start\n');
  await sleep(args.report * 1000);
  process.stdout.write('mark report_end\n');
  measuring = false;
  const counted = inWindow;
  stopping = true;
  await within(15000, 'the reporting loops to stop', Promise.all(loops));
  process.stdout.write(`result ${JSON.stringify({ clients: args.clients, updates_in_window: counted, failed })}\n`);
  await Promise.race([Promise.all(clients.map((c) => c.close().catch(() => {}))), sleep(5000)]);
}

main().then(() => process.exit(0), (error) => {
  process.stdout.write(`error ${String(error && error.message ? error.message : error).replace(/\n/g, ' ')}\n`);
  process.exit(1);
});
