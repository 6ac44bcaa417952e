/**
 * A virtual server's `initialize` answer: the protocol version it speaks with the client, and the
 * capabilities some open member offers (never one that none does), under the virtual server's
 * own name. `listChanged` is always on: members coming and going change the lists.
 */
import type { MemberLink } from './member-link.ts'

/** The 2025-era versions a virtual session speaks (2026 clients are sessionless). */
const SESSION_VERSIONS = ['2024-11-05', '2025-03-26', '2025-06-18', '2025-11-25']
const LATEST = '2025-11-25'
const GATEWAY_VERSION = '0.1.0'

/** The client's version when the gateway speaks it, else the newest it does (the client decides). */
export function negotiatedVersion (requested: unknown): string {
  return typeof requested === 'string' && SESSION_VERSIONS.includes(requested) ? requested : LATEST
}

export function mergedInitialize (name: string, protocolVersion: string, open: readonly MemberLink[]): Record<string, unknown> {
  const offered = (capability: string): boolean => open.some((link) => link.init?.capabilities[capability] !== undefined)
  const capabilities: Record<string, unknown> = {}
  if (offered('tools')) capabilities.tools = { listChanged: true }
  if (offered('prompts')) capabilities.prompts = { listChanged: true }
  if (offered('resources')) {
    const subscribe = open.some((link) => (link.init?.capabilities.resources as { subscribe?: unknown } | undefined)?.subscribe === true)
    capabilities.resources = subscribe ? { listChanged: true, subscribe: true } : { listChanged: true }
  }
  if (offered('logging')) capabilities.logging = {}
  if (offered('completions')) capabilities.completions = {}
  const result: Record<string, unknown> = { protocolVersion, capabilities, serverInfo: { name, version: GATEWAY_VERSION } }
  const instructions = open
    .filter((link) => typeof link.init?.instructions === 'string' && link.init.instructions.length > 0)
    .map((link) => `${link.spec.namespace}: ${link.init?.instructions as string}`)
  if (instructions.length > 0) result.instructions = instructions.join('\n\n')
  return result
}
