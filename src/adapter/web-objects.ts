/**
 * Lightweight stand-ins for the WHATWG `Headers`, `Request` and `Response` the app runs on.
 *
 * Why: on Lambda every request is built from an event and every response turned back into one;
 * undici's real objects cost ~15 µs to build a Request, ~45 µs to read a Response body back
 * through its stream and ~2 µs per header set (validation), which made a warm GET /health take
 * ~175 µs in-process, and loading undici at all adds ~35 ms to a cold start on Node 20. These
 * classes keep plain values (a Map of headers, the body as the string or bytes it was given) and
 * create the real object only if some code asks for what they do not model (a body stream, a
 * signal). The same idea as @hono/node-server's lightweight Request/Response, which it installs
 * for the Node server but does not export.
 *
 * The Lambda entry installs `Headers` and `Response` as globals; the Node server, whose
 * @hono/node-server already brings a lightweight Request and Response, installs `Headers`.
 * `fetch` keeps undici's own classes either way.
 */
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

  /** In insertion order (the real Headers sorts; nothing here depends on it), Set-Cookie last. */
  *entries(): IterableIterator<[string, string]> {
    yield* this.#map.entries();
    for (const c of this.#cookies) yield ['set-cookie', c];
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

// Node defines the WHATWG globals as lazy getters that load undici on first use: keep the
// original getter, so the real Response is only loaded if it is really needed.
const responseGetter = Object.getOwnPropertyDescriptor(globalThis, 'Response');
const realResponse = (): typeof Response =>
  (responseGetter?.get ? responseGetter.get.call(globalThis) : responseGetter?.value) as typeof Response;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

const toText = (body: BodyValue) => (body === null ? '' : typeof body === 'string' ? body : decoder.decode(body));
const toBytes = (body: BodyValue) => (body === null ? new Uint8Array() : typeof body === 'string' ? encoder.encode(body) : body);

export class LightResponse {
  readonly status: number;
  readonly statusText: string;
  readonly headers: LightHeaders;
  readonly #body: BodyValue;
  readonly #other: unknown;
  #real: Response | undefined;

  /** `x instanceof Response` holds for light and real responses (checked without loading undici). */
  static [Symbol.hasInstance](value: unknown): boolean {
    return Function.prototype[Symbol.hasInstance].call(LightResponse, value) || Object.prototype.toString.call(value) === '[object Response]';
  }

  constructor(body?: unknown, init: { status?: number; statusText?: string; headers?: HeadersInitLike } = {}) {
    this.status = init.status ?? 200;
    this.statusText = init.statusText ?? '';
    this.headers = init.headers instanceof LightHeaders ? init.headers : new LightHeaders(init.headers);
    if (body === undefined || body === null) this.#body = null;
    else if (typeof body === 'string' || body instanceof Uint8Array) this.#body = body;
    else {
      // Streams, Blobs, FormData…: kept as given and handled by a real Response when read.
      this.#body = null;
      this.#other = body;
    }
    if (typeof this.#body === 'string' && !this.headers.has('content-type')) this.headers.set('content-type', 'text/plain;charset=UTF-8');
  }

  get ok(): boolean {
    return this.status >= 200 && this.status < 300;
  }

  /** The body as given, when it is a string or bytes (what the Lambda result needs, no stream). */
  get plainBody(): BodyValue | undefined {
    return this.#other === undefined ? this.#body : undefined;
  }

  #materialise(): Response {
    const Real = realResponse();
    this.#real ??= new Real((this.#other ?? this.#body) as BodyInit | null, {
      status: this.status,
      statusText: this.statusText,
      headers: this.headers.toPairs(),
    });
    return this.#real;
  }

  get body(): ReadableStream<Uint8Array> | null {
    return this.#other === undefined && this.#body === null ? null : this.#materialise().body;
  }

  get bodyUsed(): boolean {
    return this.#real?.bodyUsed ?? false;
  }

  async text(): Promise<string> {
    return this.#other === undefined ? toText(this.#body) : this.#materialise().text();
  }

  async json(): Promise<unknown> {
    return JSON.parse(await this.text());
  }

  async arrayBuffer(): Promise<ArrayBuffer> {
    if (this.#other !== undefined) return this.#materialise().arrayBuffer();
    const bytes = toBytes(this.#body);
    return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  }

  clone(): LightResponse {
    if (this.#other !== undefined) throw new TypeError('cannot clone a streaming lightweight response');
    return new LightResponse(this.#body, { status: this.status, statusText: this.statusText, headers: new LightHeaders(this.headers) });
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
    return this.#bytes === null ? '' : decoder.decode(this.#bytes);
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
