/**
 * Lightweight stand-ins for the WHATWG `Headers`, `Request` and `Response` the app runs on.
 *
 * Why: on Lambda every request is built from an event and every response turned back into one;
 * undici's real objects cost ~15 µs to build a Request, ~45 µs to read a Response body back
 * through its stream and ~2 µs per header set (validation), which made a warm GET /health take
 * ~175 µs in-process, and loading undici at all adds 30–60 ms to a cold start (Node 20 and 22).
 * These classes keep plain values (a Map of headers, the body as the string or bytes it was
 * given). A request builds the real object only if some code asks for what it does not model (a
 * body stream, a signal); a response never does (see LightResponse). The same idea as
 * @hono/node-server's lightweight Request/Response, which it installs for the Node server but
 * does not export.
 *
 * The Lambda entry installs `Headers` and `Response` as globals; the Node server, whose
 * @hono/node-server already brings a lightweight Request and Response, installs `Headers`.
 * `fetch` keeps undici's own classes either way.
 */
import { Readable } from 'node:stream';

type HeadersInitLike = Headers | LightHeaders | [string, string][] | Record<string, string | readonly string[]> | undefined;

export class LightHeaders {
  readonly #map = new Map<string, string>();
  #cookies: string[] = [];

  constructor(init?: HeadersInitLike) {
    if (!init) return;
    if (init instanceof LightHeaders) {
      for (const [k, v] of init.#map) this.#map.set(k, v);
      this.#cookies = [...init.#cookies];
    } else if (typeof (init as Iterable<unknown>)[Symbol.iterator] === 'function') {
      for (const [k, v] of init as Iterable<[string, string]>) this.append(k, v);
    } else {
      for (const [k, v] of Object.entries(init as Record<string, string | readonly string[]>)) {
        if (Array.isArray(v)) for (const x of v) this.append(k, x);
        else this.append(k, v as string);
      }
    }
  }

  get(name: string): string | null {
    const key = name.toLowerCase();
    if (key === 'set-cookie') return this.#cookies.length ? this.#cookies.join(', ') : null;
    return this.#map.get(key) ?? null;
  }

  has(name: string): boolean {
    const key = name.toLowerCase();
    return key === 'set-cookie' ? this.#cookies.length > 0 : this.#map.has(key);
  }

  set(name: string, value: string): void {
    const key = name.toLowerCase();
    if (key === 'set-cookie') this.#cookies = [String(value)];
    else this.#map.set(key, String(value));
  }

  append(name: string, value: string): void {
    const key = name.toLowerCase();
    if (key === 'set-cookie') {
      this.#cookies.push(String(value));
      return;
    }
    const current = this.#map.get(key);
    this.#map.set(key, current === undefined ? String(value) : `${current}, ${value}`);
  }

  delete(name: string): void {
    const key = name.toLowerCase();
    if (key === 'set-cookie') this.#cookies = [];
    else this.#map.delete(key);
  }

  getSetCookie(): string[] {
    return [...this.#cookies];
  }

  /**
   * In insertion order (the real Headers sorts; nothing here depends on it), Set-Cookie last.
   * Without cookies it is the Map's own iterator: the Node server walks every response's headers
   * (@hono/node-server's buildOutgoingHttpHeaders), and a generator costs more per step.
   */
  entries(): IterableIterator<[string, string]> {
    if (this.#cookies.length === 0) return this.#map.entries();
    return [...this.#map.entries(), ...this.#cookies.map((c): [string, string] => ['set-cookie', c])].values();
  }

  keys(): IterableIterator<string> {
    return (function* (h: LightHeaders) {
      for (const [k] of h.entries()) yield k;
    })(this);
  }

  values(): IterableIterator<string> {
    return (function* (h: LightHeaders) {
      for (const [, v] of h.entries()) yield v;
    })(this);
  }

  forEach(fn: (value: string, key: string, parent: LightHeaders) => void): void {
    for (const [k, v] of this.#map) fn(v, k, this);
    for (const c of this.#cookies) fn(c, 'set-cookie', this);
  }

  [Symbol.iterator](): IterableIterator<[string, string]> {
    return this.entries();
  }

  /** Pairs for the real Headers when a real object is needed. */
  toPairs(): [string, string][] {
    return [...this.entries()];
  }
}

type BodyValue = string | Uint8Array | null;
/** Bodies kept as given and read on demand: a stream (e.g. Hono's streaming helpers) or a Blob. */
type StreamedBody = ReadableStream<Uint8Array> | Blob;

/**
 * UTF-8 through Buffer rather than a TextDecoder/TextEncoder made at module scope (which loads
 * Node's internal/encoding during init for nothing). A leading BOM is dropped, as the WHATWG
 * decoder does.
 */
const decodeUtf8 = (bytes: Uint8Array): string => {
  const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8');
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
};
const toText = (body: BodyValue) => (body === null ? '' : typeof body === 'string' ? body : decodeUtf8(body));
const toBytes = (body: BodyValue) => (body === null ? new Uint8Array() : typeof body === 'string' ? Buffer.from(body, 'utf8') : body);
const copyBytes = (view: ArrayBufferView) => new Uint8Array(view.buffer.slice(view.byteOffset, view.byteOffset + view.byteLength));
const isReadableStream = (value: object): value is ReadableStream<Uint8Array> => typeof (value as ReadableStream).getReader === 'function';

/**
 * A Response that never needs undici's. On Node 22 the WHATWG globals are lazy data properties:
 * even reading `Object.getOwnPropertyDescriptor(globalThis, 'Response')` (to keep the original
 * for later) loads undici, ~35 ms of a cold start, so this class models every body the app can
 * give (string, bytes, ArrayBuffer(View), URLSearchParams, Blob, ReadableStream) with Node's own
 * Blob and web streams, and refuses FormData, which only undici can encode.
 */
export class LightResponse {
  readonly status: number;
  readonly statusText: string;
  readonly headers: LightHeaders;
  readonly #body: BodyValue;
  #streamed: StreamedBody | undefined;
  /** The stream handed out by `body` (the same object on every read, as with a real Response). */
  #stream: ReadableStream<Uint8Array> | null | undefined;
  #used = false;

  /** `x instanceof Response` holds for light and real responses (checked without loading undici). */
  static [Symbol.hasInstance](value: unknown): boolean {
    return Function.prototype[Symbol.hasInstance].call(LightResponse, value) || Object.prototype.toString.call(value) === '[object Response]';
  }

  constructor(body?: unknown, init: { status?: number; statusText?: string; headers?: HeadersInitLike } = {}) {
    this.status = init.status ?? 200;
    this.statusText = init.statusText ?? '';
    this.headers = init.headers instanceof LightHeaders ? init.headers : new LightHeaders(init.headers);
    let type: string | undefined;
    if (body === undefined || body === null) this.#body = null;
    else if (typeof body === 'string' || body instanceof Uint8Array) this.#body = body;
    else if (body instanceof ArrayBuffer) this.#body = new Uint8Array(body.slice(0));
    else if (ArrayBuffer.isView(body)) this.#body = copyBytes(body);
    else if (body instanceof URLSearchParams) {
      this.#body = body.toString();
      type = 'application/x-www-form-urlencoded;charset=UTF-8';
    } else if (body instanceof Blob) {
      this.#body = null;
      this.#streamed = body;
      type = body.type || undefined;
    } else if (typeof body === 'object' && isReadableStream(body)) {
      this.#body = null;
      this.#streamed = body;
    } else if (Object.prototype.toString.call(body) === '[object FormData]') {
      throw new TypeError('FormData bodies are not supported by the lightweight Response (web-objects.ts)');
    } else this.#body = String(body); // what WebIDL does with any other value
    if (typeof this.#body === 'string') type ??= 'text/plain;charset=UTF-8';
    if (type && !this.headers.has('content-type')) this.headers.set('content-type', type);
  }

  get ok(): boolean {
    return this.status >= 200 && this.status < 300;
  }

  /** The body as given, when it is a string or bytes (what the Lambda result needs, no stream). */
  get plainBody(): BodyValue | undefined {
    return this.#streamed === undefined ? this.#body : undefined;
  }

  get body(): ReadableStream<Uint8Array> | null {
    if (this.#stream === undefined) {
      const s = this.#streamed;
      // Blob#stream() is Node's own web stream: no undici.
      this.#stream = s === undefined ? (this.#body === null ? null : new Blob([toBytes(this.#body) as Uint8Array<ArrayBuffer>]).stream()) : s instanceof Blob ? s.stream() : s;
    }
    return this.#stream;
  }

  get bodyUsed(): boolean {
    return this.#used || (this.#stream ? Readable.isDisturbed(this.#stream as unknown as NodeJS.ReadableStream) : false);
  }

  async text(): Promise<string> {
    this.#used = true;
    const s = this.#streamed;
    if (s === undefined) return toText(this.#body);
    if (s instanceof Blob) return s.text();
    return (await import('node:stream/consumers')).text(s as unknown as AsyncIterable<Uint8Array>);
  }

  async json(): Promise<unknown> {
    return JSON.parse(await this.text());
  }

  async arrayBuffer(): Promise<ArrayBuffer> {
    this.#used = true;
    const s = this.#streamed;
    if (s instanceof Blob) return s.arrayBuffer();
    if (s !== undefined) return (await import('node:stream/consumers')).arrayBuffer(s as unknown as AsyncIterable<Uint8Array>);
    const bytes = toBytes(this.#body);
    return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  }

  clone(): LightResponse {
    const init = { status: this.status, statusText: this.statusText, headers: new LightHeaders(this.headers) };
    const s = this.#streamed;
    if (s === undefined || s instanceof Blob) return new LightResponse(s ?? this.#body, init);
    if (s.locked || Readable.isDisturbed(s as unknown as NodeJS.ReadableStream)) throw new TypeError('Response.clone: the body is already in use');
    // As a real Response does: the stream is teed, one branch each.
    const [mine, theirs] = s.tee();
    this.#streamed = mine;
    if (this.#stream !== undefined) this.#stream = mine;
    return new LightResponse(theirs, init);
  }
}

/**
 * The request the app receives on Lambda: method, URL and headers as plain values, the body as
 * bytes; a real Request is built only for what it does not model.
 */
export class LightRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: LightHeaders;
  readonly #bytes: Uint8Array | null;
  #real: Request | undefined;
  #used = false;

  constructor(url: string, method: string, headers: LightHeaders, bytes: Uint8Array | null) {
    this.url = url;
    this.method = method;
    this.headers = headers;
    this.#bytes = method === 'GET' || method === 'HEAD' ? null : bytes;
  }

  #materialise(): Request {
    this.#real ??= new Request(this.url, {
      method: this.method,
      headers: this.headers.toPairs(),
      body: this.#bytes as Uint8Array<ArrayBuffer> | null,
    });
    return this.#real;
  }

  get body(): ReadableStream<Uint8Array> | null {
    return this.#bytes === null ? null : this.#materialise().body;
  }

  get bodyUsed(): boolean {
    return this.#used || (this.#real?.bodyUsed ?? false);
  }

  get signal(): AbortSignal {
    return this.#materialise().signal;
  }

  async text(): Promise<string> {
    this.#used = true;
    return this.#bytes === null ? '' : decodeUtf8(this.#bytes);
  }

  async json(): Promise<unknown> {
    return JSON.parse(await this.text());
  }

  async arrayBuffer(): Promise<ArrayBuffer> {
    this.#used = true;
    const b = this.#bytes ?? new Uint8Array();
    return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
  }

  async blob(): Promise<Blob> {
    return this.#materialise().blob();
  }

  async formData(): Promise<FormData> {
    return this.#materialise().formData();
  }

  clone(): Request {
    return this.#materialise().clone();
  }
}

/** Makes the app build its responses (and headers) with the lightweight classes. */
export function installLightweightGlobals(which: { headers: boolean; response: boolean } = { headers: true, response: true }): void {
  if (which.headers) (globalThis as { Headers: unknown }).Headers = LightHeaders;
  if (which.response) (globalThis as { Response: unknown }).Response = LightResponse;
}
