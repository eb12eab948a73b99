// The live feed: GET /api/v1/ws/analytics sends JSON arrays of analytics events for the
// signed-in tenant. Reconnects with backoff when the connection drops (a slow client is
// dropped by the server with 1013); stops for good when the server refuses the credentials.

const REFUSED = {
  4401: "the server refused the credentials",
  4403: "the credentials name another organization",
};
const MAX_DELAY_MS = 10_000;

export class LiveFeed {
  /**
   * @param {() => string} url the WebSocket URL
   * @param {() => string[]} protocols the subprotocols to offer (they carry the credentials)
   * @param {{onEvents: (events: object[]) => void, onOpen: () => void,
   *          onStatus: (state: string, text: string) => void,
   *          onRefused: (reason: string) => void}} handlers
   */
  constructor(url, protocols, handlers) {
    this.url = url;
    this.protocols = protocols;
    this.handlers = handlers;
    this.socket = null;
    this.timer = null;
    this.failures = 0;
    this.stopped = true;
  }

  start() {
    this.stop();
    this.stopped = false;
    this.connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.socket) {
      const socket = this.socket;
      this.socket = null;
      socket.close(1000, "signed out");
    }
    this.handlers.onStatus("offline", "offline");
  }

  connect() {
    this.handlers.onStatus("connecting", "connecting…");
    const socket = new WebSocket(this.url(), this.protocols());
    this.socket = socket;
    socket.addEventListener("open", () => {
      if (this.socket !== socket) return;
      this.failures = 0;
      this.handlers.onStatus("live", "live");
      // Events sent while we were away are lost: catch up from the API.
      this.handlers.onOpen();
    });
    socket.addEventListener("message", (message) => {
      if (this.socket !== socket) return;
      let events;
      try {
        events = JSON.parse(message.data);
      } catch {
        return; // not a batch of events: nothing to show
      }
      if (Array.isArray(events)) this.handlers.onEvents(events);
    });
    socket.addEventListener("close", (closed) => this.closed(socket, closed));
  }

  closed(socket, closed) {
    if (this.socket !== socket || this.stopped) return;
    this.socket = null;
    if (Object.hasOwn(REFUSED, closed.code)) {
      this.stopped = true;
      this.handlers.onStatus("refused", "refused");
      this.handlers.onRefused(REFUSED[closed.code]);
      return;
    }
    this.failures += 1;
    const backoff = Math.min(MAX_DELAY_MS, 500 * 2 ** (this.failures - 1));
    const delay = backoff * (0.75 + Math.random() / 2); // jitter: clients do not return in step
    this.handlers.onStatus("reconnecting", `reconnecting in ${Math.round(delay / 1000)} s`);
    this.timer = setTimeout(() => this.connect(), delay);
  }
}
