// azure-iot-device with azure-iot-device-mqtt (MQTT over TLS) against the hub: connect with the
// sample device's connection string from hub.json (SAS, group-derived key in open auth), get the
// twin, patch reported properties, receive a desired patch written through the hub's REST API,
// and answer a direct method invoked through REST.
'use strict';

const { Client } = require('azure-iot-device');
const { Mqtt } = require('azure-iot-device-mqtt');
const { assert, hubInfo, call, within, Inbox, step, runFlow, azureService } = require('./common');

async function invokeWhenSubscribed(service, deviceId, methodName, payload) {
  // The SDK subscribes to $iothub/methods/POST/# when a method handler is registered and gives
  // no signal when the SUBACK arrives; until then the hub rightly answers 404 (no subscriber).
  const deadline = Date.now() + 10000;
  for (;;) {
    const res = await service.invokeMethod(deviceId, methodName, payload);
    if (res.status !== 404 || Date.now() > deadline) return res;
    await new Promise((r) => setTimeout(r, 100));
  }
}

runFlow('azure_device', async () => {
  const hub = hubInfo();
  const service = azureService(hub);
  const { device_id: deviceId, connection_string: connectionString } = hub.azure.sample_device;
  assert.match(connectionString, new RegExp(`^HostName=localhost:${hub.mqttsPort};DeviceId=${deviceId};SharedAccessKey=`),
               'the sample connection string names the MQTT/TLS port');

  const client = Client.fromConnectionString(connectionString, Mqtt);
  try {
    await step('connect over MQTT/TLS with the SAS of the sample device', () => within(15000, 'open', client.open()));

    const twin = await step('get the twin', async () => {
      const t = await within(10000, 'getTwin', client.getTwin());
      assert.strictEqual(typeof t.properties.desired.$version, 'number', 'desired.$version');
      assert.strictEqual(typeof t.properties.reported.$version, 'number', 'reported.$version');
      return t;
    });
    const reportedVersion = twin.properties.reported.$version;

    await step('patch reported properties; the service sees them', async () => {
      await call('reported update', (cb) => twin.properties.reported.update(
        { firmware: { version: '1.2.3' }, temperature: 21.5 }, cb));
      const res = await service.getTwin(deviceId);
      assert.strictEqual(res.status, 200, res.body);
      assert.deepStrictEqual(res.json.properties.reported.firmware, { version: '1.2.3' });
      assert.strictEqual(res.json.properties.reported.temperature, 21.5);
      assert.strictEqual(res.json.properties.reported.$version, reportedVersion + 1, 'reported $version + 1');
    });

    await step('a second get sees the reported patch and its version', async () => {
      const again = await within(10000, 'getTwin', client.getTwin());
      // getTwin refreshes the same Twin object in place.
      assert.strictEqual(again.properties.reported.temperature, 21.5);
      assert.strictEqual(again.properties.reported.$version, reportedVersion + 1);
    });

    await step('receive a desired patch written through REST (PATCH /twins, If-Match *)', async () => {
      await call('enableTwinDesiredPropertiesUpdates', (cb) => twin.enableTwinDesiredPropertiesUpdates(cb));
      const desired = new Inbox('properties.desired');
      twin.on('properties.desired', (delta) => desired.push(delta));
      // Adding the listener first replays the current desired properties.
      const current = await desired.next();
      const before = current.$version;
      const res = await service.patchTwin(deviceId, { properties: { desired: { interval: 30, mode: { fan: 'auto' } } } });
      assert.strictEqual(res.status, 200, res.body);
      assert.strictEqual(res.json.properties.desired.$version, before + 1, 'service sees desired $version + 1');
      const patch = await desired.next();
      assert.strictEqual(patch.$version, before + 1, 'the pushed patch carries the new $version');
      assert.strictEqual(patch.interval, 30);
      assert.deepStrictEqual(patch.mode, { fan: 'auto' });
      assert.strictEqual(twin.properties.desired.interval, 30, 'the SDK merged the patch into its twin');
      assert.strictEqual(twin.properties.desired.$version, before + 1);
    });

    await step('answer a direct method invoked through REST', async () => {
      const requests = new Inbox('method reboot');
      client.onDeviceMethod('reboot', (request, response) => {
        requests.push(request.payload);
        response.send(201, { rebooted: true, delay: request.payload.delay }, (err) => {
          if (err) console.error(`method response failed: ${err}`);
        });
      });
      const res = await invokeWhenSubscribed(service, deviceId, 'reboot', { delay: 5 });
      assert.strictEqual(res.status, 200, `invoke answered ${res.status}: ${res.body}`);
      assert.deepStrictEqual(res.json, { status: 201, payload: { rebooted: true, delay: 5 } });
      assert.deepStrictEqual(await requests.next(), { delay: 5 }, 'the device got the payload');
    });

    await step('a method the device does not answer times out with 504101', async () => {
      client.onDeviceMethod('silent', () => { /* never answers */ });
      const res = await service.invokeMethod(deviceId, 'silent', null, 5);  // IoT Hub's least timeout
      assert.strictEqual(res.status, 504, res.body);
      assert.strictEqual(res.json.errorCode, 504101, res.body);
    });
  } finally {
    await within(10000, 'close', client.close()).catch(() => {});
  }

  await step('a method to the disconnected device answers 404103', async () => {
    const res = await service.invokeMethod(deviceId, 'reboot', {});
    assert.strictEqual(res.status, 404, res.body);
    assert.strictEqual(res.json.errorCode, 404103, res.body);
  });
});
