// A small client of the graphql-transport-ws protocol: one websocket,
// many subscriptions, reconnection with back-off. After a reconnection it
// fires "resync" so views can refetch what they may have missed.

const PROTOCOL = 'graphql-transport-ws';
const IDLE_CLOSE_MS = 10000;

/** LiveClient runs GraphQL subscriptions over one websocket. */
export class LiveClient extends EventTarget {
  constructor(url) {
    super();
    this.url = url;
    this.subs = new Map();
    this.nextId = 1;
    this.ws = null;
    this.acked = false;
    this.attempts = 0;
    this.everAcked = false;
    this.state = 'idle';
    this.idleTimer = null;
    this.retryTimer = null;
    this.barriers = [];
  }

  /**
   * barrier resolves to true once the connection is acknowledged and a
   * ping sent after every subscribe so far has come back, so the server
   * has read them all; to false after timeoutMs without that.
   */
  barrier(timeoutMs = 5000) {
    return new Promise((resolve) => {
      const timer = setTimeout(() => done(false), timeoutMs);
      const done = (ok) => {
        clearTimeout(timer);
        this.barriers = this.barriers.filter((b) => b !== waiter);
        resolve(ok);
      };
      const waiter = { sent: false, done };
      this.barriers.push(waiter);
      if (this.acked) this.sendPing();
    });
  }

  sendPing() {
    for (const b of this.barriers) b.sent = true;
    this.send({ type: 'ping', payload: { barrier: true } });
  }

  pong() {
    this.barriers.filter((b) => b.sent).forEach((b) => b.done(true));
  }

  /**
   * subscribe starts a subscription. handlers: next(data), error(errors),
   * complete(). It returns a function that ends the subscription.
   */
  subscribe(query, variables, handlers) {
    const id = String(this.nextId++);
    this.subs.set(id, { query, variables, ...handlers });
    clearTimeout(this.idleTimer);
    if (this.acked) this.sendSubscribe(id);
    else this.connect();
    return () => this.unsubscribe(id);
  }

  unsubscribe(id) {
    if (!this.subs.delete(id)) return;
    if (this.acked) this.send({ id, type: 'complete' });
    if (this.subs.size === 0) {
      clearTimeout(this.idleTimer);
      this.idleTimer = setTimeout(() => this.close(), IDLE_CLOSE_MS);
    }
  }

  connect() {
    if (this.ws) return;
    clearTimeout(this.retryTimer);
    this.setState('connecting');
    const ws = new WebSocket(this.url, PROTOCOL);
    this.ws = ws;
    ws.addEventListener('open', () => this.send({ type: 'connection_init', payload: {} }));
    ws.addEventListener('message', (e) => this.receive(e.data));
    ws.addEventListener('close', () => this.closed(ws));
  }

  /** close ends the connection (the subscriptions stay, for a later connect). */
  close() {
    const ws = this.ws;
    if (!ws) return;
    this.ws = null;
    this.acked = false;
    ws.close(1000, 'idle');
    this.setState('idle');
  }

  closed(ws) {
    if (this.ws !== ws) return; // closed on purpose
    this.ws = null;
    this.acked = false;
    this.setState('closed');
    if (this.subs.size === 0) return;
    const delay = Math.min(30000, 500 * 2 ** this.attempts) * (0.75 + Math.random() / 2);
    this.attempts += 1;
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }

  receive(raw) {
    let msg;
    try { msg = JSON.parse(raw); } catch { return; }
    const sub = msg.id ? this.subs.get(msg.id) : null;
    switch (msg.type) {
      case 'connection_ack': return this.acknowledged();
      case 'ping': return this.send({ type: 'pong', payload: msg.payload });
      case 'pong': return this.pong();
      case 'next':
        if (tooSlow(msg.payload)) {
          if (sub) sub.tooSlow = true; // resubscribed on complete
        } else if (msg.payload?.errors?.length) sub?.error?.(msg.payload.errors);
        else if (sub) sub.next?.(msg.payload.data);
        return undefined;
      case 'error':
        this.subs.delete(msg.id);
        return sub?.error?.(msg.payload);
      case 'complete':
        if (sub?.tooSlow) {
          // The server closed a subscription that fell behind: subscribe
          // again, and let views refetch what was missed.
          sub.tooSlow = false;
          this.sendSubscribe(msg.id);
          this.dispatchEvent(new Event('resync'));
          return undefined;
        }
        this.subs.delete(msg.id);
        return sub?.complete?.();
      default: return undefined;
    }
  }

  acknowledged() {
    this.acked = true;
    this.attempts = 0;
    this.setState('open');
    for (const id of this.subs.keys()) this.sendSubscribe(id);
    if (this.barriers.length) this.sendPing();
    if (this.everAcked) this.dispatchEvent(new Event('resync'));
    this.everAcked = true;
  }

  sendSubscribe(id) {
    const { query, variables } = this.subs.get(id);
    this.send({ id, type: 'subscribe', payload: { query, variables } });
  }

  send(msg) {
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(msg));
  }

  setState(state) {
    this.state = state;
    this.dispatchEvent(new CustomEvent('state', { detail: state }));
  }
}

/** live is the page's one client, on the service's /query. */
export const live = new LiveClient(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/query`);

/** tooSlow reports the error that ends a subscription which fell behind. */
function tooSlow(payload) {
  return (payload?.errors || []).some((e) => e.extensions?.code === 'SUBSCRIBER_TOO_SLOW');
}
