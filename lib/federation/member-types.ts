/**
 * What a member of a virtual server is (its configuration), what it said when its session opened,
 * what the client said, and what a member session tells its virtual session.
 */
import type { JsonRpcNotification, JsonRpcRequest } from '../jsonrpc.ts'
import type { Upstream } from '../upstream/types.ts'
import type { CompiledFilter, ListKind } from './catalog.ts'
import type { MemberLink } from './member-link.ts'

/** A member as configured: its upstream, namespace, timeout and filters. */
export interface MemberSpec {
  index: number
  name: string
  /** The virtual server's name, for errors. */
  server: string
  namespace: string
  /** Longest wait to open its session or answer a list. */
  timeout: number
  upstream: Upstream
  filters: Record<ListKind, CompiledFilter>
}

/** What a member said when its session opened. */
export interface MemberInit {
  protocolVersion: string
  capabilities: Record<string, unknown>
  serverInfo?: { name?: string, version?: string }
  instructions?: string
}

/** The client's side of `initialize`, sent on to every member. */
export interface ClientHello {
  protocolVersion: string
  capabilities: Record<string, unknown>
  clientInfo: Record<string, unknown>
}

export interface LinkWatcher {
  /** A notification or server-to-client request from the member. */
  message (link: MemberLink, message: JsonRpcNotification | JsonRpcRequest): void
  /** The member's session is gone (it exited, forgot it, or cannot be reached). */
  lost (link: MemberLink, reason: Error): void
  /** The member has a new session (after it lost or forgot the old one). */
  reopened (link: MemberLink): void
}
