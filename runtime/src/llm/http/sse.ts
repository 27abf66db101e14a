/** One server-sent event: its `event:` name (`message` when none) and its joined `data:` lines. */
export interface SseEvent {
  readonly event: string;
  readonly data: string;
}

/**
 * Server-sent events from a response body, as the HTML spec parses them: events end at a blank
 * line, `data:` lines join with `\n`, `:` lines are comments, CR, LF and CRLF all end a line.
 * `touch` is called on every chunk received (the caller's stall timer).
 */
export async function* readSse(body: ReadableStream<Uint8Array>, touch: () => void): AsyncGenerator<SseEvent> {
  const decoder = new TextDecoder();
  const reader = body.getReader();
  let buf = '';
  let event = '';
  let data: string[] = [];
  try {
    for (;;) {
      const { done, value } = await reader.read();
      touch();
      buf += done ? decoder.decode() : decoder.decode(value, { stream: true });
      let at: number;
      // A lone CR at the very end may be the first half of a CRLF: wait for the next chunk.
      while ((at = buf.search(/\r\n|\r(?!$)|\n/)) >= 0 || (done && buf.length > 0 && (at = buf.length) > 0)) {
        const line = buf.slice(0, at);
        buf = buf.slice(at + (buf.startsWith('\r\n', at) ? 2 : at < buf.length ? 1 : 0));
        if (line === '') {
          if (data.length) yield { event: event || 'message', data: data.join('\n') };
          event = '';
          data = [];
          continue;
        }
        if (line.startsWith(':')) continue;
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
        if (field === 'event') event = value;
        else if (field === 'data') data.push(value);
      }
      if (done) {
        if (data.length) yield { event: event || 'message', data: data.join('\n') };
        return;
      }
    }
  } finally {
    reader.releaseLock();
    await body.cancel().catch(() => undefined);
  }
}
