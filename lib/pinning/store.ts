/**
 * Where pins live: per upstream, per tool, the approved definition (`pin`) and a definition seen
 * since and not yet approved (`proposal`), kept apart so that a list noting a proposal and an
 * approval on another instance never overwrite each other. In memory for one instance; in Redis
 * (one hash per upstream, `redis/pin-store.ts`) for several.
 */
import type { ToolDefinition } from './definition.ts'

export interface Pin {
  hash: string
  definition: ToolDefinition
  /** ISO time it was pinned (first seen, or approved). */
  pinnedAt: string
  /** Who approved it; null for one pinned on first sight. */
  approvedBy: string | null
}

export interface Proposal {
  hash: string
  definition: ToolDefinition
  seenAt: string
  /** `changed`: differs from its pin; `new`: a tool first seen after the upstream's first list. */
  kind: 'changed' | 'new'
}

export interface UpstreamPins {
  pins: Map<string, Pin>
  proposals: Map<string, Proposal>
}

export interface PinStore {
  /** Every pin and proposal of one upstream. */
  load (upstream: string): Promise<UpstreamPins>
  /** Pins `tool` unless it is pinned already; whether it did. */
  pinIfAbsent (upstream: string, tool: string, pin: Pin): Promise<boolean>
  propose (upstream: string, tool: string, proposal: Proposal): Promise<void>
  /** Pins the definition given and drops the proposal. */
  approve (upstream: string, tool: string, pin: Pin): Promise<void>
  /** Every upstream with a proposal (for the admin API). */
  upstreams (): Promise<string[]>
}

/** Most upstreams and tools a memory store keeps (a bound on what upstreams can make it hold). */
const MAX_UPSTREAMS = 10_000
const MAX_TOOLS = 100_000

export class MemoryPinStore implements PinStore {
  private readonly byUpstream = new Map<string, UpstreamPins>()

  private of (upstream: string): UpstreamPins {
    let pins = this.byUpstream.get(upstream)
    if (pins === undefined) {
      if (this.byUpstream.size >= MAX_UPSTREAMS) throw new Error('too many upstreams with pins')
      pins = { pins: new Map(), proposals: new Map() }
      this.byUpstream.set(upstream, pins)
    }
    return pins
  }

  async load (upstream: string): Promise<UpstreamPins> {
    const pins = this.byUpstream.get(upstream)
    return pins === undefined ? { pins: new Map(), proposals: new Map() } : { pins: new Map(pins.pins), proposals: new Map(pins.proposals) }
  }

  async pinIfAbsent (upstream: string, tool: string, pin: Pin): Promise<boolean> {
    const pins = this.of(upstream)
    if (pins.pins.has(tool)) return false
    if (pins.pins.size >= MAX_TOOLS) throw new Error(`too many pinned tools for ${upstream}`)
    pins.pins.set(tool, pin)
    return true
  }

  async propose (upstream: string, tool: string, proposal: Proposal): Promise<void> {
    const pins = this.of(upstream)
    if (pins.proposals.size >= MAX_TOOLS) throw new Error(`too many proposed tools for ${upstream}`)
    pins.proposals.set(tool, proposal)
  }

  async approve (upstream: string, tool: string, pin: Pin): Promise<void> {
    const pins = this.of(upstream)
    pins.pins.set(tool, pin)
    pins.proposals.delete(tool)
  }

  async upstreams (): Promise<string[]> {
    return [...this.byUpstream.keys()]
  }
}
