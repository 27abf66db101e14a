/** What a stream needs of a WebSocket (the `ws` socket has it); tests may pass their own. */
export interface FrameSocket {
  /** Bytes handed to the socket and not yet written to the OS. */
  readonly bufferedAmount: number;
  readonly readyState: number;
  send(data: string, cb?: (err?: Error) => void): void;
  close(code?: number, reason?: string): void;
  on(event: 'close', listener: () => void): unknown;
}

const OPEN = 1;

export interface WriterLimits {
  /** Most bytes a connection may have waiting in its socket; a frame that would pass it waits. */
  maxBufferedBytes: number;
  /** How long a frame may wait for room before the client counts as stalled. */
  stallMs: number;
}

/**
 * Writes frames to one WebSocket without ever letting its send buffer grow past a bound: a frame
 * that does not fit waits until what was sent before it has been flushed to the OS, and a client
 * that does not read for `stallMs` is reported as stalled instead of being buffered for.
 */
export class FrameWriter {
  /** The most bytes this connection ever had waiting in its socket (for tests and metrics). */
  peakBufferedBytes = 0;
  private flushed: Promise<void> = Promise.resolve();

  constructor(
    private readonly socket: FrameSocket,
    private readonly limits: WriterLimits,
  ) {}

  get open(): boolean {
    return this.socket.readyState === OPEN;
  }

  get bufferedBytes(): number {
    return this.socket.bufferedAmount;
  }

  /** Whether `bytes` more fit now. An empty buffer takes any frame, however large: else it could never be sent. */
  fits(bytes: number): boolean {
    const b = this.socket.bufferedAmount;
    return b === 0 || b + bytes <= this.limits.maxBufferedBytes;
  }

  /** Send at once (the caller checked `fits`, or the frame is a small last word such as `behind`). */
  sendNow(frame: string): void {
    if (!this.open) return;
    this.flushed = new Promise((resolve) => this.socket.send(frame, () => resolve()));
    this.peakBufferedBytes = Math.max(this.peakBufferedBytes, this.socket.bufferedAmount);
  }

  /** Resolves true once everything sent so far is flushed to the OS, false after `stallMs` (or when closed). */
  async drained(): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const stalled = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), this.limits.stallMs);
      timer.unref();
    });
    try {
      return await Promise.race([this.flushed.then(() => this.open), stalled]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Send a frame, first waiting for room if it does not fit; false if the client stalled or left. */
  async write(frame: string): Promise<boolean> {
    if (!this.open) return false;
    if (!this.fits(Buffer.byteLength(frame)) && !(await this.drained())) return false;
    this.sendNow(frame);
    return this.open;
  }
}
