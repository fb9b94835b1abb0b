/**
 * Typed errors of the product and the one function that turns any error into a secret-free line
 * for a person. No `vscode` import: used by the client, the bridge supervisor and tests alike.
 */

/** The platform (or bridge) answered with an HTTP error status. `detail` is its own error text. */
export class PlatformError extends Error {
  override readonly name = 'PlatformError';
  constructor(
    readonly status: number,
    readonly detail: string | undefined,
    readonly method: string,
    readonly path: string,
    readonly host: string,
  ) {
    super(PlatformError.describe(status, detail, host));
  }

  private static describe(status: number, detail: string | undefined, host: string): string {
    if (status === 401) return `The master key was rejected by ${host}${detail && detail !== 'unauthorized' ? ` (${detail})` : ''}.`;
    const what = detail ?? statusText(status);
    return `${host} answered ${status}: ${what}`;
  }
}

/** The server could not be reached (DNS, refused, reset, TLS, connect timeout). */
export class PlatformUnreachableError extends Error {
  override readonly name = 'PlatformUnreachableError';
  constructor(
    readonly url: string,
    readonly reason: string,
    readonly code?: string,
  ) {
    super(`Cannot reach ${url}: ${reason}`);
  }
}

/** The server answered, but not like the platform API (HTML, invalid JSON, wrong shape). */
export class PlatformProtocolError extends Error {
  override readonly name = 'PlatformProtocolError';
  constructor(
    readonly host: string,
    readonly reason: string,
  ) {
    super(`${host} did not answer like an agent platform: ${reason}`);
  }
}

/** The user (or a caller's AbortSignal) cancelled. Commands stay silent on it. */
export class CancelledError extends Error {
  override readonly name = 'CancelledError';
  constructor(message = 'Cancelled') {
    super(message);
  }
}

/** Input from a person or a file that we reject before sending anything. */
export class InvalidInputError extends Error {
  override readonly name = 'InvalidInputError';
}

export function isCancellation(err: unknown): boolean {
  return err instanceof CancelledError || (err instanceof Error && err.name === 'AbortError');
}

export function statusText(status: number): string {
  const texts: Record<number, string> = {
    400: 'bad request',
    401: 'unauthorized',
    403: 'forbidden',
    404: 'not found',
    409: 'conflict',
    413: 'request too large',
    429: 'too many requests',
    500: 'internal server error',
    502: 'bad gateway',
    503: 'service unavailable',
    504: 'gateway timeout',
  };
  return texts[status] ?? 'error';
}

const TOKEN_PATTERNS: RegExp[] = [
  /\b(Bearer\s+)[A-Za-z0-9._~+/=-]{6,}/gi,
  /([?&](?:token|key|api_key|apikey|access_token)=)[^&\s#]+/gi,
  /\b(sk-[A-Za-z0-9_-]{3})[A-Za-z0-9_-]{8,}/g,
];

/** Removes known secrets and anything shaped like a bearer token, query token or API key. */
export function redact(text: string, secrets: readonly (string | undefined)[] = []): string {
  let out = text;
  for (const secret of secrets) {
    if (secret && secret.length >= 4) out = out.split(secret).join('***');
  }
  for (const pattern of TOKEN_PATTERNS) out = out.replace(pattern, '$1***');
  return out;
}

/** One line for a person: what went wrong, never a token. */
export function toUserMessage(err: unknown, secrets: readonly (string | undefined)[] = []): string {
  let text: string;
  if (err instanceof Error) text = err.message || err.name;
  else if (typeof err === 'string') text = err;
  else text = 'Unknown error';
  return redact(text, secrets);
}
