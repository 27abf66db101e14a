import type { ApiErrorBody } from './types';

/** An error answer of the gateway, with its stable code (and the field at fault, if any). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly field?: string,
    /** The run ids an ambiguous id prefix matches (AO_RUN_ID_AMBIGUOUS). */
    readonly candidates: string[] = [],
  ) {
    super(message);
  }
}

const KEY = 'ao.apiKey';

/**
 * The API key the inspector sends, if the gateway wants one (once any key exists, every route but
 * `/health` does). Kept in this browser's localStorage; set from the header's key field.
 */
export function apiKey(): string | null {
  try {
    return localStorage.getItem(KEY);
  } catch {
    return null;
  }
}

export function setApiKey(key: string | null): void {
  if (key) localStorage.setItem(KEY, key);
  else localStorage.removeItem(KEY);
}

async function request<T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
  let res: Response;
  const key = apiKey();
  try {
    res = await fetch(path, {
      method,
      headers: {
        accept: 'application/json',
        ...(key ? { authorization: `Bearer ${key}` } : {}),
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
  } catch (e) {
    throw new ApiError(0, 'AO_UNREACHABLE', `the gateway did not answer ${method} ${path}: ${(e as Error).message}`);
  }
  const json = (await res.json().catch(() => undefined)) as (T & Partial<ApiErrorBody>) | undefined;
  if (!res.ok || json === undefined) {
    const e = json?.error;
    throw new ApiError(res.status, e?.code ?? 'AO_HTTP', e?.message ?? `${method} ${path}: HTTP ${res.status}`, e?.field, e?.candidates ?? []);
  }
  return json;
}

/** GET a JSON path of the gateway (same origin; `vite dev` proxies it to :4000). */
export const getJson = <T>(path: string): Promise<T> => request<T>('GET', path);
export const postJson = <T>(path: string, body: unknown): Promise<T> => request<T>('POST', path, body);

/** The WebSocket URL of a gateway path on this origin (a browser cannot set headers on one: the key goes in `access_token`). */
export function wsUrl(path: string): string {
  const key = apiKey();
  const withKey = key ? `${path}${path.includes('?') ? '&' : '?'}access_token=${encodeURIComponent(key)}` : path;
  return `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}${withKey}`;
}

/** Every envelope of a run, page by page (the events API gives at most 1,000 at a time). */
export async function allEvents<E extends { seq: number }>(runId: string, upTo = Infinity): Promise<E[]> {
  const out: E[] = [];
  for (let after = 0; ;) {
    const page = await getJson<{ events: E[]; next: number | null }>(`/runs/${encodeURIComponent(runId)}/events?after=${after}&limit=1000`);
    for (const e of page.events) if (e.seq <= upTo) out.push(e);
    if (page.next === null || page.events.at(-1)!.seq >= upTo) return out;
    after = page.next;
  }
}
