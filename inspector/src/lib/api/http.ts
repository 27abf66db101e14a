import type { ApiErrorBody } from './types';

/** An error answer of the gateway, with its stable code (and the field at fault, if any). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly field?: string,
  ) {
    super(message);
  }
}

async function request<T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
  let res: Response;
  try {
    res = await fetch(path, {
      method,
      headers: { accept: 'application/json', ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
  } catch (e) {
    throw new ApiError(0, 'AO_UNREACHABLE', `the gateway did not answer ${method} ${path}: ${(e as Error).message}`);
  }
  const json = (await res.json().catch(() => undefined)) as (T & Partial<ApiErrorBody>) | undefined;
  if (!res.ok || json === undefined) {
    const e = json?.error;
    throw new ApiError(res.status, e?.code ?? 'AO_HTTP', e?.message ?? `${method} ${path}: HTTP ${res.status}`, e?.field);
  }
  return json;
}

/** GET a JSON path of the gateway (same origin; `vite dev` proxies it to :4000). */
export const getJson = <T>(path: string): Promise<T> => request<T>('GET', path);
export const postJson = <T>(path: string, body: unknown): Promise<T> => request<T>('POST', path, body);

/** The WebSocket URL of a gateway path on this origin. */
export function wsUrl(path: string): string {
  return `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}${path}`;
}
