/**
 * Acknowledges output the terminal has parsed, for the host's flow control (which passes it on to the
 * bridge, where it paces the program's output): bytes are summed and sent as one `ack` once they
 * reach `batchBytes`, or after `delayMs` otherwise, so a flood costs one message per output message
 * (≤ 16 KB each) and a trickle is acknowledged within 10 ms. Acks that lag keep the window shut, so
 * they must not wait long.
 */
export class AckBatcher {
  private pending = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly send: (bytes: number) => void,
    private readonly batchBytes = 16 * 1024,
    private readonly delayMs = 10,
  ) {}

  /** Called from xterm's write callback with the size of the chunk it has just parsed. */
  parsed(bytes: number): void {
    this.pending += bytes;
    if (this.pending >= this.batchBytes) this.flush();
    else this.timer ??= setTimeout(() => this.flush(), this.delayMs);
  }

  flush(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.pending === 0) return;
    const bytes = this.pending;
    this.pending = 0;
    this.send(bytes);
  }
}
