/**
 * What an upstream request carries to prove who it is for: the upstream's `auth` mode turned into
 * headers for one request. `static` headers are the upstream's own option (no object here); every
 * other mode is one of these, asked on each request with the caller it is for.
 */
import type { Principal } from '../auth/principal.ts'

/**
 * Who an upstream request is on behalf of: the inbound principal (its own token, for token
 * exchange). `background`: no client waits on the request (a heartbeat ping, a DELETE on
 * expiry, a stream resumed or taken over), so nobody could follow a sign-in link.
 */
export type Caller = Pick<Principal, 'id' | 'token' | 'claims'> & { background?: boolean }

export interface UpstreamCredentials {
  /** `clientCredentials`, `tokenExchange`, `oauth`: for logs and the README's table. */
  readonly mode: string
  /** The mode acts for a user: it needs inbound auth, and a caller on every request. */
  readonly perUser: boolean
  /**
   * The `authorization` value for one request. A held token comes back as a string, with no
   * promise; else the promise of one (fetched, exchanged or refreshed). Rejects with a coded
   * gateway error: `UPSTREAM_TOKEN`, or `CONSENT_REQUIRED` when the user must sign in first.
   */
  authorization (caller: Caller | undefined): string | Promise<string>
  /**
   * The upstream answered 401 to a request that carried `authorization`: forget that token.
   * Resolves true when a new one is worth one retry of the request (never when `final`: that
   * was the retry); rejects with the error the client should get instead of `UPSTREAM_AUTH`
   * (`CONSENT_REQUIRED`, for per-user OAuth).
   */
  rejected (caller: Caller | undefined, authorization: string, final: boolean): Promise<boolean>
}

/**
 * A session's requests made with no client request at hand (its GET stream reopened, its DELETE
 * on expiry): on behalf of the principal that opened it. Per-user modes find that principal's
 * held token by its id.
 */
export function sessionCaller (session: { principal?: string | undefined }): Caller | undefined {
  return session.principal === undefined ? undefined : { id: session.principal, background: true }
}
