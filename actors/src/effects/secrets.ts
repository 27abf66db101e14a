import { fieldOf, handlesIn, sealResult, substituteHandles } from '@ao/runtime';
import type { ErrorInfo, RunSecrets, ToolSecrets } from '@ao/runtime';

/**
 * The secret side of a tool call, between Effects and the tool (see DESIGN.md, "Secrets"):
 * handles in the arguments are opened just before the call, and secret parts of the result are
 * sealed and replaced by handles before the result is journaled or shown to the model.
 */

type Refusal = { ok: false; error: ErrorInfo };

/**
 * The arguments the tool gets: each handle in a field marked secret replaced by its value. A known
 * handle in a field that is not marked secret is refused (AO_SECRET_NOT_ALLOWED): a model must not
 * be able to move a secret into a URL, a message body or any place a tool may echo back. A handle
 * this run does not hold, in a secret field, is AO_SECRET_NOT_FOUND; elsewhere a string that only
 * looks like a handle is left alone.
 */
export async function openArgs(secrets: RunSecrets, sec: ToolSecrets, tool: string, args: unknown): Promise<{ ok: true; args: unknown } | Refusal> {
  const places = handlesIn(sec, args);
  if (!places.length) return { ok: true, args };
  const values = await secrets.open(places.flatMap((p) => p.handles));
  const misplaced = places.find((p) => !p.secret && p.handles.some((h) => values.has(h)));
  if (misplaced) {
    return refusal(
      'AO_SECRET_NOT_ALLOWED',
      `argument ${fieldOf(misplaced.ptr)} of ${tool} is not marked secret, so it cannot take a secret handle; pass secrets only in the arguments the tool marks secret`,
      fieldOf(misplaced.ptr),
    );
  }
  const unknown = places.find((p) => p.secret && p.handles.some((h) => !values.has(h)));
  if (unknown) {
    return refusal(
      'AO_SECRET_NOT_FOUND',
      `argument ${fieldOf(unknown.ptr)} of ${tool} names a secret handle this run does not hold; use a handle exactly as a tool result gave it`,
      fieldOf(unknown.ptr),
    );
  }
  return { ok: true, args: substituteHandles(args, new Set(places.filter((p) => p.secret).map((p) => p.ptr)), values) };
}

/**
 * The result as the log and the model see it: secret parts sealed in the vault, handles in their
 * place. A node without a key (Postgres without AO_SECRET_KEY) cannot seal: the secret parts are
 * dropped and read `[secret not kept: AO_SECRET_KEY_MISSING]`, so nothing leaks, the tool stays
 * usable for the rest of its result, and the reason is in the log and before the model.
 */
export async function sealOutcome(secrets: RunSecrets, sec: ToolSecrets, effectKey: string, result: unknown): Promise<unknown> {
  const { shown, sealed } = sealResult(sec, effectKey, result);
  if (!sealed.length) return shown;
  if (!secrets.enabled) {
    const dropped = new Set(sealed.map((x) => x.handle));
    return JSON.parse(JSON.stringify(shown), (_k, v: unknown) => (typeof v === 'string' && dropped.has(v) ? NOT_KEPT : v));
  }
  await secrets.seal(sealed);
  return shown;
}

export const NOT_KEPT = '[secret not kept: AO_SECRET_KEY_MISSING]';

const refusal = (code: ErrorInfo['code'], message: string, field?: string): Refusal => ({
  ok: false,
  error: { code, message, ...(field ? { details: { field } } : {}) },
});
