// aws-iot-device-sdk-v2 (over aws-crt) against the hub, MQTT 3.1.1 over TLS with a client
// certificate signed by the hub's CA (CN = thing name; run.js starts the hub with --auth strict).
//
// Part 1, the publish/subscribe client (iotshadow.IotShadowClient), classic shadow: update,
// get, a delta subscription, a version conflict, delete.
// Part 2, the request-response client (iotshadow.IotShadowClientv2, which subscribes per request
// and correlates replies by a UUID clientToken), named shadow "config" and the classic shadow:
// update, get, a delta stream, delete, and get after delete as a modelled 404.
'use strict';

const { iot, io, mqtt, iotshadow } = require('aws-iot-device-sdk-v2');
const { assert, hubInfo, clientCert, within, Inbox, step, runFlow, awsDataPlane } = require('./common');

const THING = 'conformance-thing-v2';
const NAMED = 'config';
const QOS1 = mqtt.QoS.AtLeastOnce;

runFlow('aws_v2', async () => {
  const hub = hubInfo();
  const rest = awsDataPlane(hub);
  const { cert, key } = clientCert(THING);

  const builder = iot.AwsIotMqttConnectionConfigBuilder.new_mtls_builder_from_path(cert, key);
  builder.with_certificate_authority_from_path(undefined, hub.ca_file);
  builder.with_endpoint(hub.aws.endpoint);
  builder.with_port(hub.aws.mqtt_port);
  builder.with_client_id(THING);
  builder.with_clean_session(true);
  builder.with_keep_alive_seconds(60);
  const client = new mqtt.MqttClient(new io.ClientBootstrap());
  const connection = client.new_connection(builder.build());
  connection.on('error', (err) => console.error(`connection error: ${err}`));

  await step('connect with MQTT 3.1.1 over TLS (client certificate, ALPN x-amzn-mqtt-ca)', async () => {
    const sessionPresent = await within(15000, 'connect', connection.connect());
    assert.strictEqual(sessionPresent, false, 'clean session');
  });

  try {
    // ---- Part 1: IotShadowClient, classic shadow -----------------------------------------------
    const shadow = new iotshadow.IotShadowClient(connection);
    const inbox = {};
    const listen = (name) => {
      inbox[name] = new Inbox(name);
      return (error, response) => inbox[name].push(error ? { error } : response);
    };
    await step('subscribe (QoS 1) to update/get/delete accepted and rejected, and to delta', async () => {
      const t = { thingName: THING };
      const subs = await within(10000, 'subscriptions', Promise.all([
        shadow.subscribeToUpdateShadowAccepted(t, QOS1, listen('updateAccepted')),
        shadow.subscribeToUpdateShadowRejected(t, QOS1, listen('updateRejected')),
        shadow.subscribeToGetShadowAccepted(t, QOS1, listen('getAccepted')),
        shadow.subscribeToGetShadowRejected(t, QOS1, listen('getRejected')),
        shadow.subscribeToDeleteShadowAccepted(t, QOS1, listen('deleteAccepted')),
        shadow.subscribeToDeleteShadowRejected(t, QOS1, listen('deleteRejected')),
        shadow.subscribeToShadowDeltaUpdatedEvents(t, QOS1, listen('delta')),
      ]));
      for (const s of subs) assert.strictEqual(s.qos, QOS1, `granted QoS for ${s.topic}`);
    });

    await step('update reported: accepted with version 1 and the clientToken', async () => {
      await shadow.publishUpdateShadow({ thingName: THING, clientToken: 'v2-token-1', state: { reported: { temp: 20 } } }, QOS1);
      const r = await inbox.updateAccepted.next();
      assert.strictEqual(r.clientToken, 'v2-token-1');
      assert.strictEqual(r.version, 1);
      assert.deepStrictEqual(r.state.reported, { temp: 20 });
      assert.ok(r.timestamp instanceof Date || typeof r.timestamp === 'number', `timestamp ${r.timestamp}`);
    });

    await step('update desired: accepted with version 2, and a delta event', async () => {
      await shadow.publishUpdateShadow({ thingName: THING, clientToken: 'v2-token-2', state: { desired: { temp: 22 } } }, QOS1);
      const r = await inbox.updateAccepted.next();
      assert.strictEqual(r.clientToken, 'v2-token-2');
      assert.strictEqual(r.version, 2);
      const d = await inbox.delta.next();
      assert.deepStrictEqual(d.state, { temp: 22 });
      assert.strictEqual(d.version, 2);
      assert.strictEqual(typeof d.metadata.temp.timestamp, 'number');
    });

    await step('get: desired, reported and delta, with the clientToken', async () => {
      await shadow.publishGetShadow({ thingName: THING, clientToken: 'v2-token-3' }, QOS1);
      const r = await inbox.getAccepted.next();
      assert.strictEqual(r.clientToken, 'v2-token-3');
      assert.strictEqual(r.version, 2);
      assert.deepStrictEqual(r.state, { desired: { temp: 22 }, reported: { temp: 20 }, delta: { temp: 22 } });
    });

    await step('an update with a stale version: rejected 409 Version conflict', async () => {
      await shadow.publishUpdateShadow({ thingName: THING, clientToken: 'v2-token-4', version: 1,
                                         state: { reported: { temp: 21 } } }, QOS1);
      const r = await inbox.updateRejected.next();
      assert.strictEqual(r.clientToken, 'v2-token-4');
      assert.strictEqual(r.code, 409);
      assert.strictEqual(r.message, 'Version conflict');
    });

    await step('delete: accepted with the version; get then rejected 404', async () => {
      await shadow.publishDeleteShadow({ thingName: THING, clientToken: 'v2-token-5' }, QOS1);
      const r = await inbox.deleteAccepted.next();
      assert.strictEqual(r.clientToken, 'v2-token-5');
      assert.strictEqual(r.version, 2);
      await shadow.publishGetShadow({ thingName: THING, clientToken: 'v2-token-6' }, QOS1);
      const g = await inbox.getRejected.next();
      assert.strictEqual(g.clientToken, 'v2-token-6');
      assert.strictEqual(g.code, 404);
      assert.strictEqual(g.message, `No shadow exists with name: '${THING}'`);
    });

    await step('unsubscribe from the classic shadow topics', async () => {
      const base = `$aws/things/${THING}/shadow`;
      for (const topic of [`${base}/update/accepted`, `${base}/update/rejected`, `${base}/get/accepted`,
                           `${base}/get/rejected`, `${base}/delete/accepted`, `${base}/delete/rejected`,
                           `${base}/update/delta`]) {
        await within(5000, `unsubscribe ${topic}`, connection.unsubscribe(topic));
      }
    });

    // ---- Part 2: IotShadowClientv2 (request-response), named and classic shadows ----------------
    const rr = iotshadow.IotShadowClientv2.newFromMqtt311(connection, {
      maxRequestResponseSubscriptions: 4, maxStreamingSubscriptions: 2, operationTimeoutInSeconds: 10,
    });
    try {
      const deltas = new Inbox('named delta stream');
      const stream = rr.createNamedShadowDeltaUpdatedStream({ thingName: THING, shadowName: NAMED });
      try {
        await step('open a delta stream on the named shadow', async () => {
          const established = new Promise((resolve, reject) => {
            stream.on('subscriptionStatus', (e) => {
              if (e.type === 0) resolve(); else reject(new Error(`subscription status ${e.type}: ${e.error}`));
            });
          });
          stream.on('incomingPublish', (e) => deltas.push(e.message));
          stream.on('incomingPublishError', (e) => deltas.push({ error: e }));
          stream.open();
          await within(10000, 'stream subscription', established);
        });

        await step('updateNamedShadow reported: version 1, clientToken correlated', async () => {
          const r = await within(15000, 'updateNamedShadow', rr.updateNamedShadow({
            thingName: THING, shadowName: NAMED, state: { reported: { mode: 'eco' } } }));
          assert.strictEqual(r.version, 1);
          assert.deepStrictEqual(r.state.reported, { mode: 'eco' });
          assert.match(r.clientToken, /^[0-9a-f-]{36}$/, `the SDK's UUID clientToken, echoed: ${r.clientToken}`);
        });

        await step('desired written through the data plane (SigV4, ?name=) reaches the delta stream', async () => {
          const res = await rest.updateShadow(THING, { state: { desired: { mode: 'turbo' } } }, NAMED);
          assert.strictEqual(res.status, 200, res.body);
          assert.strictEqual(res.json.version, 2);
          const d = await deltas.next();
          assert.ok(!d.error, `delta parse error: ${d.error && d.error.error}`);
          assert.deepStrictEqual(d.state, { mode: 'turbo' });
          assert.strictEqual(d.version, 2);
        });

        await step('getNamedShadow: the document with its delta', async () => {
          const r = await within(15000, 'getNamedShadow', rr.getNamedShadow({ thingName: THING, shadowName: NAMED }));
          assert.strictEqual(r.version, 2);
          assert.deepStrictEqual(r.state, { desired: { mode: 'turbo' }, reported: { mode: 'eco' }, delta: { mode: 'turbo' } });
        });

        await step('updateNamedShadow with a stale version: a ServiceError carrying 409', async () => {
          await assert.rejects(rr.updateNamedShadow({ thingName: THING, shadowName: NAMED, version: 1,
                                                      state: { reported: { mode: 'turbo' } } }), (err) => {
            assert.ok(err.modeledError, `no modelled error: ${err.message}`);
            assert.strictEqual(err.modeledError.code, 409);
            assert.strictEqual(err.modeledError.message, 'Version conflict');
            return true;
          });
        });

        await step('the classic shadow through the request-response client: update and get', async () => {
          const u = await within(15000, 'updateShadow', rr.updateShadow({ thingName: THING, state: { reported: { temp: 19 } } }));
          // The classic shadow was deleted at version 2; AWS continues from there.
          assert.strictEqual(u.version, 3);
          const g = await within(15000, 'getShadow', rr.getShadow({ thingName: THING }));
          assert.deepStrictEqual(g.state, { reported: { temp: 19 } });
          assert.strictEqual(g.version, 3);
        });

        await step('deleteNamedShadow, then getNamedShadow is a modelled 404', async () => {
          const d = await within(15000, 'deleteNamedShadow', rr.deleteNamedShadow({ thingName: THING, shadowName: NAMED }));
          assert.strictEqual(d.version, 2);
          await assert.rejects(rr.getNamedShadow({ thingName: THING, shadowName: NAMED }), (err) => {
            assert.ok(err.modeledError, `no modelled error: ${err.message}`);
            assert.strictEqual(err.modeledError.code, 404);
            assert.strictEqual(err.modeledError.message, `No shadow exists with name: '${NAMED}'`);
            return true;
          });
          const list = await rest.getShadow(THING, NAMED);
          assert.strictEqual(list.status, 404, list.body);
        });
      } finally {
        stream.close();
      }
    } finally {
      rr.close();
    }
  } finally {
    await within(10000, 'disconnect', connection.disconnect()).catch(() => {});
    client.close && client.close();
  }
});
