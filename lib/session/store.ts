/**
 * Session records and the store interface. Every method is async and every value is plain JSON,
 * so a store backed by Redis (or anything else) implements the same interface.
 */

export interface SessionRecord {
  /** The gateway's own session id, the only one a client ever sees. */
  id: string
  /** Name of the upstream this session is bound to. */
  upstream: string
  /** The upstream's `Mcp-Session-Id`, never shown to the client; null for a stateless upstream. */
  upstreamSessionId: string | null
  /** Negotiated protocol version (the upstream's answer to `initialize`). */
  protocolVersion: string
  clientInfo?: Record<string, unknown>
  clientCapabilities?: Record<string, unknown>
  /**
   * Id of the principal that opened the session (inbound auth on): only that principal may use
   * it; anyone else is told it does not exist.
   */
  principal?: string
  /** Epoch milliseconds. */
  createdAt: number
  /** Epoch milliseconds of the last request that named this session. */
  lastSeenAt: number
}

export interface SessionStore {
  create (record: SessionRecord): Promise<void>
  get (id: string): Promise<SessionRecord | undefined>
  /** Merges `patch` into the record; resolves to the new record, or undefined if it is gone. */
  update (id: string, patch: Partial<Omit<SessionRecord, 'id'>>): Promise<SessionRecord | undefined>
  /** `get` and `touch` in one step, where the store can do better than both in turn. */
  getAndTouch? (id: string, at: number): Promise<SessionRecord | undefined>
  /** Marks the session as used now (for idle expiry). */
  touch (id: string, at: number): Promise<void>
  /** Resolves true when a record was deleted. */
  delete (id: string): Promise<boolean>
  /** Number of live records. */
  size (): Promise<number>
  /**
   * Records last seen before `idleBefore`, or created before `createdBefore` (epoch ms), at most
   * `limit` of them: what the sweeper expires.
   */
  listExpired (idleBefore: number, createdBefore: number, limit: number): Promise<SessionRecord[]>
  /** The `limit` records seen last, newest first (the admin API's list). */
  list (limit: number): Promise<SessionRecord[]>
  close (): Promise<void>
}
