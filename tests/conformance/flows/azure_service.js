// azure-iothub (the service SDK, REST over HTTPS) against the hub in strict auth: Registry.create
// registers a device (the hub generates its keys), azure-iot-device connects with them over MQTT
// (an unregistered device is refused), then Registry.getTwin, Twin.update and
// Registry.updateTwin with the etag (a stale etag must surface as InvalidEtagError, 412), and
// Client.invokeDeviceMethod against the connected device.
//
// azure-iothub always dials port 443 (PROTOCOLS.md part E): run.js starts the hub with
// --listen-https 127.0.0.1:443 for this flow.
'use strict';

const iothub = require('azure-iothub');
const { Client: DeviceClient } = require('azure-iot-device');
const { Mqtt } = require('azure-iot-device-mqtt');
const { assert, hubInfo, call, within, Inbox, step, runFlow } = require('./common');

runFlow('azure_service', async () => {
  const hub = hubInfo();
  assert.strictEqual(hub.httpsPort, 443, 'azure-iothub needs the hub on port 443');
  // Port 443 is the SDK's only port and it takes HostName as a bare DNS name: a connection string
  // with "localhost:443" would be looked up as a host called "localhost:443", so hub.json leaves
  // the port out on 443 and the string is used exactly as the hub wrote it.
  const connectionString = hub.azure.service_connection_string;
  assert.ok(!/^HostName=[^;]*:443;/.test(connectionString), `hub.json keeps :443 in ${connectionString}`);
  const registry = iothub.Registry.fromConnectionString(connectionString);
  const serviceClient = iothub.Client.fromConnectionString(connectionString);
  assert.strictEqual(hub.auth, 'strict', 'run.js starts this flow with --auth strict');
  const deviceId = 'conformance-service-device';
  const deviceConnection = (id, key) => `HostName=localhost:${hub.mqttsPort};DeviceId=${id};SharedAccessKey=${key}`;

  const key = await step('Registry.create registers a device; the hub generates its keys', async () => {
    const [created] = await call('Registry.create', (cb) => registry.create({ deviceId, status: 'enabled' }, cb));
    assert.strictEqual(created.deviceId, deviceId);
    assert.strictEqual(created.status, 'enabled');
    const keys = created.authentication.symmetricKey;
    assert.strictEqual(Buffer.from(keys.primaryKey, 'base64').length, 32, 'a 256-bit primary key');
    assert.notStrictEqual(keys.primaryKey, keys.secondaryKey);
    const [got] = await call('Registry.get', (cb) => registry.get(deviceId, cb));
    assert.strictEqual(got.authentication.symmetricKey.primaryKey, keys.primaryKey);
    return keys.primaryKey;
  });

  await step('an unregistered device is refused in strict auth', async () => {
    const stranger = DeviceClient.fromConnectionString(deviceConnection('conformance-stranger', key), Mqtt);
    await assert.rejects(within(15000, 'stranger open', stranger.open()), (err) => {
      // CONNACK 5 (not authorized), as IoT Hub answers an unknown device.
      assert.strictEqual(err.constructor.name, 'UnauthorizedError', `${err.constructor.name}: ${err.message}`);
      assert.match(err.message, /Not authorized/, err.message);
      return true;
    });
    await within(5000, 'stranger close', stranger.close()).catch(() => {});
  });

  const device = DeviceClient.fromConnectionString(deviceConnection(deviceId, key), Mqtt);
  try {
    await step('the registered device connects with its key over MQTT/TLS', async () => {
      await within(15000, 'device open', device.open());
      await within(10000, 'device getTwin', device.getTwin());
    });

    const twin = await step('Registry.getTwin', async () => {
      const [t] = await call('getTwin', (cb) => registry.getTwin(deviceId, cb));
      assert.strictEqual(t.deviceId, deviceId);
      assert.match(t.etag, /^[A-Za-z0-9+/=]+$/, `etag ${t.etag}`);
      assert.strictEqual(typeof t.properties.desired.$version, 'number');
      assert.strictEqual(typeof t.properties.reported.$version, 'number');
      return t;
    });
    const firstEtag = twin.etag;
    const firstVersion = twin.properties.desired.$version;

    await step('Twin.update sends If-Match with the etag and takes the new etag', async () => {
      await call('twin.update', (cb) => twin.update({ tags: { site: 'lab' }, properties: { desired: { interval: 10 } } }, cb));
      assert.notStrictEqual(twin.etag, firstEtag, 'the etag changed');
      assert.strictEqual(twin.tags.site, 'lab');
      assert.strictEqual(twin.properties.desired.interval, 10);
      assert.strictEqual(twin.properties.desired.$version, firstVersion + 1);
    });

    await step('Registry.updateTwin with the current etag', async () => {
      const [t] = await call('updateTwin', (cb) => registry.updateTwin(deviceId, { properties: { desired: { interval: 20 } } },
                                                                        twin.etag, cb));
      assert.strictEqual(t.properties.desired.interval, 20);
      assert.strictEqual(t.properties.desired.$version, firstVersion + 2);
      assert.notStrictEqual(t.etag, twin.etag);
    });

    await step('a stale etag is refused: InvalidEtagError (412)', async () => {
      await assert.rejects(
        call('updateTwin stale', (cb) => registry.updateTwin(deviceId, { properties: { desired: { interval: 99 } } },
                                                             firstEtag, cb)),
        (err) => {
          assert.strictEqual(err.constructor.name, 'InvalidEtagError', `got ${err.constructor.name}: ${err.message}`);
          assert.strictEqual(err.response.statusCode, 412);
          return true;
        });
      const [t] = await call('getTwin', (cb) => registry.getTwin(deviceId, cb));
      assert.strictEqual(t.properties.desired.interval, 20, 'the refused patch changed nothing');
    });

    await step('getTwin of an unknown device: DeviceNotFoundError', async () => {
      await assert.rejects(call('getTwin unknown', (cb) => registry.getTwin('no-such-device', cb)), (err) => {
        assert.strictEqual(err.constructor.name, 'DeviceNotFoundError', `got ${err.constructor.name}: ${err.message}`);
        return true;
      });
    });

    await step('Client.invokeDeviceMethod reaches the device and returns its status and payload', async () => {
      const requests = new Inbox('method setLight');
      device.onDeviceMethod('setLight', (request, response) => {
        requests.push(request.payload);
        response.send(200, { on: request.payload.on, brightness: 80 }, () => {});
      });
      // The device SDK gives no signal when its method subscription is acknowledged: retry
      // while the hub answers DeviceNotOnline (404103), bounded.
      const deadline = Date.now() + 10000;
      let result;
      for (;;) {
        try {
          [result] = await call('invokeDeviceMethod', (cb) => serviceClient.invokeDeviceMethod(
            deviceId, { methodName: 'setLight', payload: { on: true }, responseTimeoutInSeconds: 10 }, cb), 15000);
          break;
        } catch (err) {
          if (Date.now() > deadline || !err.response || err.response.statusCode !== 404) throw err;
          await new Promise((r) => setTimeout(r, 100));
        }
      }
      assert.deepStrictEqual(result, { status: 200, payload: { on: true, brightness: 80 } });
      assert.deepStrictEqual(await requests.next(), { on: true });
    });

    await step('the device sees the desired properties the service wrote', async () => {
      const t = await within(10000, 'device getTwin', device.getTwin());
      assert.strictEqual(t.properties.desired.interval, 20);
      assert.strictEqual(t.properties.desired.$version, firstVersion + 2);
    });
  } finally {
    await within(10000, 'device close', device.close()).catch(() => {});
  }

  await step('invokeDeviceMethod on the disconnected device fails with 404', async () => {
    await assert.rejects(
      call('invokeDeviceMethod offline', (cb) => serviceClient.invokeDeviceMethod(
        deviceId, { methodName: 'setLight', payload: {}, responseTimeoutInSeconds: 5 }, cb), 15000),
      (err) => {
        assert.strictEqual(err.response && err.response.statusCode, 404, `got ${err.message}`);
        return true;
      });
  });
});
