/**
 * What a virtual server's sessions share: its members (each one upstream, shared by every
 * session as any upstream is), naming rules, the per-kind view the catalog merges with, and the
 * list cache.
 */
import type { CatalogMember, ListKind, NamingRules } from './catalog.ts'
import type { ListCache } from './list-cache.ts'
import type { MemberSpec } from './member-types.ts'
import type { MemberName } from '../upstream/types.ts'
import type { VirtualSessionStates } from './virtual-state.ts'

export interface VirtualServer {
  name: string
  members: readonly MemberSpec[]
  rules: NamingRules
  catalog: Record<ListKind, CatalogMember[]>
  cache: ListCache
  pageSize: number
  /** First wait before a member that is down is tried again; it doubles up to `maxRetryMs`. */
  retryMs: number
  maxRetryMs: number
  /** Largest whole answer accepted from a member. */
  maxBytes: number
  /** Exposed tool and prompt names as the sessions last merged them, for interceptors and auth. */
  exposed: Record<'tools' | 'prompts', Map<string, MemberName>>
  /** Sessions' member sessions in the shared store (several instances); undefined on one. */
  states: VirtualSessionStates | undefined
}
