// Unit tests of the live client (static/js/ws.js) against a scripted
// websocket: no browser, no service.
import { test } from 'node:test';
import assert from 'node:assert/strict';

/** FakeSocket records what the client sends and lets the test answer. */
class FakeSocket extends EventTarget {
  static last = null;
  constructor(url, protocol) {
    super();
    this.url = url;
    this.protocol = protocol;
    this.sent = [];
    FakeSocket.last = this;
    queueMicrotask(() => this.dispatchEvent(new Event('open')));
  }
  send(data) { this.sent.push(JSON.parse(data)); }
  close() {}
  receive(msg) {
    const e = new Event('message');
    e.data = JSON.stringify(msg);
    this.dispatchEvent(e);
  }
  get readyState() { return 1; }
}
FakeSocket.OPEN = 1;
globalThis.WebSocket = FakeSocket;
globalThis.location = { protocol: 'http:', host: 'service' }; // read by the module's shared client
const { LiveClient } = await import('../static/js/ws.js');

test('a subscription closed for falling behind is resubscribed and views resync', async () => {
  const client = new LiveClient('ws://service/query');
  const got = [];
  let resyncs = 0;
  let completed = false;
  client.addEventListener('resync', () => { resyncs += 1; });
  client.subscribe('subscription { ditherCompleted { id } }', {}, {
    next: (data) => got.push(data),
    error: (errors) => assert.fail(`error handler called with ${JSON.stringify(errors)}`),
    complete: () => { completed = true; },
  });
  await new Promise((r) => setTimeout(r, 0));
  const ws = FakeSocket.last;
  assert.deepEqual(ws.sent.map((m) => m.type), ['connection_init']);
  ws.receive({ type: 'connection_ack' });
  const first = ws.sent.at(-1);
  assert.equal(first.type, 'subscribe');

  ws.receive({ id: first.id, type: 'next', payload: { data: { ditherCompleted: { id: 'd1' } } } });
  ws.receive({ id: first.id, type: 'next', payload: { data: null, errors: [{ message: 'fell behind', extensions: { code: 'SUBSCRIBER_TOO_SLOW' } }] } });
  ws.receive({ id: first.id, type: 'complete' });

  assert.equal(completed, false, 'the view was told the subscription ended');
  assert.equal(resyncs, 1, 'views were not asked to refetch what they missed');
  const again = ws.sent.at(-1);
  assert.deepEqual({ type: again.type, id: again.id, query: again.payload.query }, { type: 'subscribe', id: first.id, query: first.payload.query });
  ws.receive({ id: first.id, type: 'next', payload: { data: { ditherCompleted: { id: 'd2' } } } });
  assert.deepEqual(got.map((d) => d.ditherCompleted.id), ['d1', 'd2']);

  ws.receive({ id: first.id, type: 'complete' });
  assert.equal(completed, true, 'a normal completion was not passed on');
});
