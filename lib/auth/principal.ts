/** Who a request comes from, once inbound auth has checked it. */
export interface Principal {
  /** Stable id: an API key's name, or a token's `sub` (with its issuer). */
  id: string
  /** Scopes granted (a token's `scope` / `scp`; an API key's configured scopes). */
  scopes: string[]
  /** How the caller was authenticated. */
  method: 'api-key' | 'jwt'
  /** A token's claims (JWT), for policy rules (`principal.claims`). */
  claims?: Record<string, unknown>
  /**
   * The bearer token itself (JWT auth), for upstreams whose `auth` exchanges it (RFC 8693). Only
   * a token endpoint ever sees it: never an upstream, a log, the audit log or the policy.
   */
  token?: string
}

/** Turns a credential into a principal, or throws the gateway's 401 error. */
export interface Verifier {
  verify (headers: Record<string, string | string[] | undefined>): Promise<Principal>
}
