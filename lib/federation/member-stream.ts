/**
 * A member session's own stream (the 2025 GET stream; the era bridge makes a 2026 member's
 * `subscriptions/listen` look the same), held for as long as the session lasts: opened again when
 * it ends, the session re-opened when the member forgot it, and counted lost when it cannot be
 * reached. A member that offers no such stream (405), or gives it to someone else (409), is left
 * without one.
 */
import { setTimeout as delay } from 'node:timers/promises'
import type { Logger } from '../logger.ts'
import type { UpstreamEvent, UpstreamEvents } from '../upstream/events.ts'
import { refusedReply } from '../upstream/http-answer.ts'

/** Streams of its own that ended within this long of opening count as a failure (no hot loop). */
const SHORT_STREAM_MS = 1000
const MAX_SHORT_STREAMS = 5

/** The member link's side of its stream. */
export interface StreamHost {
  readonly name: string
  readonly log: Logger
  /** Whether the session the stream is for is still the link's open one. */
  current (): boolean
  listen (signal: AbortSignal): Promise<UpstreamEvents>
  receive (event: UpstreamEvent): void
  /** The member forgot the session: a new one, at once. */
  forgotten (): void
  /** The member cannot be reached. */
  lost (err: Error): void
}

export async function holdStream (host: StreamHost, signal: AbortSignal): Promise<void> {
  let short = 0
  while (host.current() && !signal.aborted) {
    let events: UpstreamEvents
    try {
      events = await host.listen(signal)
    } catch (err) {
      if (!host.current() || signal.aborted) return
      const code = (err as { code?: string }).code
      if (refusedReply(err) !== undefined || code === 'MCP_GW_STREAM_CONFLICT') return
      if (code === 'MCP_GW_UPSTREAM_SESSION_GONE') host.forgotten()
      else host.lost(err as Error)
      return
    }
    const opened = Date.now()
    await new Promise<void>((resolve) => { events.read((event) => { host.receive(event) }, () => { resolve() }) })
    if (!host.current() || signal.aborted) return
    if (Date.now() - opened >= SHORT_STREAM_MS) {
      short = 0
      continue
    }
    if (++short >= MAX_SHORT_STREAMS) {
      host.log.warn({ upstream: host.name }, 'virtual server: a member keeps ending its own stream at once; listening stopped')
      return
    }
    try {
      await delay(SHORT_STREAM_MS, undefined, { signal })
    } catch {
      return
    }
  }
}
