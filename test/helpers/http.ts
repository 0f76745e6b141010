/** Small fetch helpers for black-box tests. */
export interface Answer<T = any> {
  status: number;
  headers: Headers;
  body: T;
  text: string;
}

export async function call<T = any>(url: string, init: RequestInit & { json?: unknown } = {}): Promise<Answer<T>> {
  const headers = new Headers(init.headers);
  let body = init.body;
  if (init.json !== undefined) {
    headers.set('content-type', 'application/json');
    body = JSON.stringify(init.json);
  }
  const res = await fetch(url, { ...init, headers, body });
  const text = await res.text();
  let parsed: unknown = text;
  if ((res.headers.get('content-type') ?? '').includes('json') && text) parsed = JSON.parse(text);
  return { status: res.status, headers: res.headers, body: parsed as T, text };
}

/** Parses Prometheus text into `name{labels}` → value (labels sorted), ignoring comments. */
export function parseExposition(text: string): Map<string, number> {
  const series = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][\w:]*)(\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`unparseable exposition line: ${line}`);
    const labels = m[3] ? [...m[3].matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((x) => `${x[1]}="${x[2]}"`).sort().join(',') : '';
    series.set(labels ? `${m[1]}{${labels}}` : m[1]!, Number(m[4]));
  }
  return series;
}

/** Only the business series (what every instance must agree on). */
export function businessSeries(text: string): string {
  return text
    .split('\n')
    .filter((l) => /^(# (HELP|TYPE) )?(ai_|appointments_|human_handoffs_)/.test(l))
    .join('\n');
}
