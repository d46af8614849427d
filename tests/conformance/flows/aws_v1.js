// aws-iot-device-sdk (v1) thingShadow against the hub, over MQTT/TLS with a client certificate
// signed by the hub's CA (CN = thing name; run.js starts the hub with --auth strict): register,
// update, get, a delta when the desired state written through the AWS data plane (SigV4 REST)
// differs from the reported one, a version conflict, delete, and get after delete.
'use strict';

const awsIot = require('aws-iot-device-sdk');
const { assert, hubInfo, clientCert, within, nextEvent, Inbox, step, runFlow, awsDataPlane } = require('./common');

const THING = 'conformance-thing';

runFlow('aws_v1', async () => {
  const hub = hubInfo();
  const rest = awsDataPlane(hub);
  const { cert, key } = clientCert(THING);
  const shadows = awsIot.thingShadow({
    keyPath: key, certPath: cert, caPath: hub.ca_file, clientId: THING, host: hub.aws.endpoint, port: hub.aws.mqtt_port,
    protocol: 'mqtts', operationTimeout: 8000, reconnectPeriod: 60000,
  });
  shadows.on('error', (err) => console.error(`thingShadow error: ${err.message}`));
  const statuses = new Inbox('status');
  const deltas = new Inbox('delta');
  const foreign = new Inbox('foreignStateChange');
  shadows.on('status', (thing, stat, clientToken, stateObject) => statuses.push({ thing, stat, clientToken, stateObject }));
  shadows.on('delta', (thing, stateObject) => deltas.push({ thing, stateObject }));
  shadows.on('foreignStateChange', (thing, operation, stateObject) => foreign.push({ thing, operation, stateObject }));
  shadows.on('timeout', (thing, clientToken) => statuses.push({ thing, stat: 'timeout', clientToken }));

  // One shadow operation and its status event, matched by the clientToken the hub must echo.
  const operation = async (what, start) => {
    const token = start();
    assert.ok(token, `thingShadow refused to start ${what} (an operation still pending?)`);
    const status = await statuses.next();
    assert.strictEqual(status.clientToken, token, `${what}: status for another clientToken`);
    assert.strictEqual(status.thing, THING);
    return status;
  };

  try {
    await step('connect with the thing certificate', () => nextEvent(shadows, 'connect', 'connect', 15000));

    await step('register the thing (subscribes to delta and the accepted/rejected topics)', () =>
      within(10000, 'register', new Promise((resolve, reject) => {
        shadows.register(THING, { ignoreDeltas: false, persistentSubscribe: true },
                         (err, failed) => (err || (failed && failed.length) ? reject(err || new Error(`failed ${failed}`)) : resolve()));
      })));

    await step('update reported: accepted, version 1, clientToken echoed', async () => {
      const s = await operation('update', () => shadows.update(THING, { state: { reported: { color: 'red', level: 3 } } }));
      assert.strictEqual(s.stat, 'accepted', JSON.stringify(s.stateObject));
      assert.deepStrictEqual(s.stateObject.state, { reported: { color: 'red', level: 3 } });
      assert.strictEqual(s.stateObject.version, 1);
      assert.strictEqual(typeof s.stateObject.metadata.reported.color.timestamp, 'number');
      assert.strictEqual(typeof s.stateObject.timestamp, 'number');
    });

    await step('get: the whole document', async () => {
      const s = await operation('get', () => shadows.get(THING));
      assert.strictEqual(s.stat, 'accepted', JSON.stringify(s.stateObject));
      assert.deepStrictEqual(s.stateObject.state, { reported: { color: 'red', level: 3 } });
      assert.strictEqual(s.stateObject.version, 1);
    });

    await step('desired written through the data plane (SigV4) arrives as a delta', async () => {
      const res = await rest.updateShadow(THING, { state: { desired: { color: 'green', level: 3 } } });
      assert.strictEqual(res.status, 200, res.body);
      assert.strictEqual(res.json.version, 2);
      const d = await deltas.next();
      assert.strictEqual(d.thing, THING);
      // The delta holds only what differs from reported: level is the same on both sides.
      assert.deepStrictEqual(d.stateObject.state, { color: 'green' });
      assert.strictEqual(d.stateObject.version, 2);
      assert.strictEqual(typeof d.stateObject.metadata.color.timestamp, 'number');
      const f = await foreign.next();
      assert.strictEqual(f.operation, 'update', 'the REST update is seen as a foreign update/accepted');
      assert.deepStrictEqual(f.stateObject.state, { desired: { color: 'green', level: 3 } });
    });

    await step('reporting the desired value: accepted with version 3 (the SDK sends version 2)', async () => {
      const s = await operation('update', () => shadows.update(THING, { state: { reported: { color: 'green' } } }));
      assert.strictEqual(s.stat, 'accepted', JSON.stringify(s.stateObject));
      assert.strictEqual(s.stateObject.version, 3);
      const got = await rest.getShadow(THING);
      assert.deepStrictEqual(got.json.state, { desired: { color: 'green', level: 3 }, reported: { color: 'green', level: 3 } });
      assert.strictEqual(got.json.version, 3);
      assert.strictEqual(deltas.size, 0, 'no delta once reported matches desired');
    });

    await step('a stale version is refused: rejected 409 Version conflict, clientToken echoed', async () => {
      // Without persistent subscriptions the SDK no longer hears update/accepted between its own
      // operations, so a change made through REST leaves it with an old version.
      shadows.unregister(THING);
      await within(10000, 're-register', new Promise((resolve, reject) => {
        shadows.register(THING, { ignoreDeltas: true, persistentSubscribe: false }, (err) => (err ? reject(err) : resolve()));
      }));
      const g = await operation('get', () => shadows.get(THING));
      assert.strictEqual(g.stat, 'accepted');
      assert.strictEqual(g.stateObject.version, 3);
      const res = await rest.updateShadow(THING, { state: { reported: { level: 4 } } });
      assert.strictEqual(res.json.version, 4, res.body);
      const s = await operation('update', () => shadows.update(THING, { state: { reported: { level: 5 } } }));
      assert.strictEqual(s.stat, 'rejected', JSON.stringify(s.stateObject));
      assert.strictEqual(s.stateObject.code, 409);
      assert.strictEqual(s.stateObject.message, 'Version conflict');
    });

    await step('delete: accepted with the deleted version; get then answers 404', async () => {
      // The SDK learnt nothing from the rejection: a get refreshes its version first.
      const g = await operation('get', () => shadows.get(THING));
      assert.strictEqual(g.stateObject.version, 4);
      const d = await operation('delete', () => shadows.delete(THING));
      assert.strictEqual(d.stat, 'accepted', JSON.stringify(d.stateObject));
      assert.strictEqual(d.stateObject.version, 4);
      assert.strictEqual(typeof d.stateObject.timestamp, 'number');
      const after = await operation('get', () => shadows.get(THING));
      assert.strictEqual(after.stat, 'rejected');
      assert.strictEqual(after.stateObject.code, 404);
      assert.strictEqual(after.stateObject.message, `No shadow exists with name: '${THING}'`);
    });

    await step('an update after delete re-creates the shadow, continuing from the deleted version', async () => {
      // AWS keeps the version of a deleted shadow (PROTOCOLS.md B5); the SDK still sends it.
      const s = await operation('update', () => shadows.update(THING, { state: { reported: { color: 'blue' } } }));
      assert.strictEqual(s.stat, 'accepted', JSON.stringify(s.stateObject));
      assert.deepStrictEqual(s.stateObject.state, { reported: { color: 'blue' } });
      assert.strictEqual(s.stateObject.version, 5);
    });
  } finally {
    await within(5000, 'end', new Promise((resolve) => shadows.end(false, resolve))).catch(() => shadows.end(true));
  }
});
