import { RETENTION_DEFAULTS, type EventStore, type ReplayResult, type Retention, type StoredEvent } from './store.ts'

interface StreamLog {
  events: StoredEvent[]
  /** Index 0 of `events` holds this sequence number (events before it were trimmed). */
  firstSeq: number
}

interface SessionLog {
  streams: Map<string, StreamLog>
  /** Streams emptied by retention, with their last sequence number (the newest 1,024). */
  forgotten: Map<string, number>
  bytes: number
}

const FORGOTTEN_KEPT = 1024

/**
 * The default event store: per-stream arrays in this process, trimmed by count, bytes and age per
 * session, and by one byte budget across all sessions.
 */
export class MemoryEventStore implements EventStore {
  private readonly sessions = new Map<string, SessionLog>()
  private readonly retention: Retention
  private readonly now: () => number
  /** Bytes of event data held across all sessions. */
  private totalBytes = 0
  /** Events dropped to keep `maxBytesTotal`, since start (a metric). */
  private evicted = 0

  constructor (retention: Partial<Retention> = {}, now: () => number = Date.now) {
    this.retention = { ...RETENTION_DEFAULTS, ...retention }
    this.now = now
  }

  private session (sessionId: string): SessionLog {
    let log = this.sessions.get(sessionId)
    if (log === undefined) {
      log = { streams: new Map(), forgotten: new Map(), bytes: 0 }
      this.sessions.set(sessionId, log)
    }
    return log
  }

  private stream (log: SessionLog, streamId: string): StreamLog {
    let stream = log.streams.get(streamId)
    if (stream === undefined) {
      stream = { events: [], firstSeq: (log.forgotten.get(streamId) ?? 0) + 1 }
      log.forgotten.delete(streamId)
      log.streams.set(streamId, stream)
    }
    return stream
  }

  async open (sessionId: string, streamId: string): Promise<void> {
    this.stream(this.session(sessionId), streamId)
  }

  async append (sessionId: string, streamId: string, event: StoredEvent): Promise<void> {
    const log = this.session(sessionId)
    const stream = this.stream(log, streamId)
    if (stream.events.length === 0) stream.firstSeq = event.seq
    stream.events.push(event)
    log.bytes += event.data.length
    this.totalBytes += event.data.length
    if (stream.events.length > this.retention.maxEventsPerStream) this.dropOldest(log, streamId, stream, stream.events.length - this.retention.maxEventsPerStream)
    if (log.bytes > this.retention.maxBytesPerSession) this.trimBytes(log, this.retention.maxBytesPerSession)
    this.trimAgeOldest(log)
    if (this.totalBytes > this.retention.maxBytesTotal) this.evictOldest()
  }

  /**
   * Over the global budget: the oldest sessions (a Map iterates in creation order) give up their
   * oldest events first, down to the budget.
   */
  private evictOldest (): void {
    for (const log of this.sessions.values()) {
      const excess = this.totalBytes - this.retention.maxBytesTotal
      if (excess <= 0) return
      // Sessions already emptied hold nothing to give.
      if (log.bytes === 0) continue
      const before = this.totalBytes
      const events = this.countEvents(log)
      this.trimBytes(log, Math.max(0, log.bytes - excess))
      if (this.totalBytes < before) this.evicted += events - this.countEvents(log)
    }
  }

  private countEvents (log: SessionLog): number {
    let events = 0
    for (const stream of log.streams.values()) events += stream.events.length
    return events
  }

  /**
   * Age retention for streams nobody replays: a long session's finished answers would otherwise
   * stay until its byte budget is spent. The oldest streams come first in the Map, so this looks
   * at one event per append unless there is something to drop.
   */
  private trimAgeOldest (log: SessionLog): void {
    const oldest = this.now() - this.retention.maxAgeMs
    for (const [streamId, stream] of log.streams) {
      const first = stream.events[0]
      // An open stream with nothing in it yet (a quiet GET stream) holds nothing to trim.
      if (first === undefined) continue
      if (first.at >= oldest) return
      this.trimAge(log, streamId, stream)
      if (stream.events.length > 0) return
    }
  }

  async replay (sessionId: string, streamId: string, afterSeq: number): Promise<ReplayResult> {
    const log = this.sessions.get(sessionId)
    const stream = log?.streams.get(streamId)
    if (log === undefined) return { kind: 'unknown' }
    if (stream === undefined) {
      const lastSeq = log.forgotten.get(streamId)
      if (lastSeq === undefined) return { kind: 'unknown' }
      return afterSeq >= lastSeq ? { kind: 'events', events: [] } : { kind: 'trimmed' }
    }
    this.trimAge(log, streamId, stream)
    if (afterSeq + 1 < stream.firstSeq) return { kind: 'trimmed' }
    const start = afterSeq + 1 - stream.firstSeq
    return { kind: 'events', events: start >= stream.events.length ? [] : stream.events.slice(start) }
  }

  async lastSeq (sessionId: string, streamId: string): Promise<number | undefined> {
    const log = this.sessions.get(sessionId)
    const stream = log?.streams.get(streamId)
    if (stream !== undefined) return stream.firstSeq + stream.events.length - 1
    return log?.forgotten.get(streamId)
  }

  async deleteSession (sessionId: string): Promise<void> {
    const log = this.sessions.get(sessionId)
    if (log === undefined) return
    this.totalBytes -= log.bytes
    this.sessions.delete(sessionId)
  }

  async stats (): Promise<{ events: number, bytes: number, streams: number, evicted: number }> {
    let events = 0
    let bytes = 0
    let streams = 0
    for (const log of this.sessions.values()) {
      bytes += log.bytes
      streams += log.streams.size
      for (const stream of log.streams.values()) events += stream.events.length
    }
    return { events, bytes, streams, evicted: this.evicted }
  }

  async close (): Promise<void> {
    this.sessions.clear()
    this.totalBytes = 0
  }

  /** Drops a stream's `count` oldest events; a stream emptied this way is forgotten. */
  private dropOldest (log: SessionLog, streamId: string, stream: StreamLog, count: number): void {
    const dropped = stream.events.splice(0, count)
    for (const event of dropped) {
      log.bytes -= event.data.length
      this.totalBytes -= event.data.length
    }
    stream.firstSeq += dropped.length
    // Forget emptied streams, or a long session would keep one entry per call it ever made.
    if (stream.events.length === 0 && dropped.length > 0) {
      log.streams.delete(streamId)
      log.forgotten.set(streamId, stream.firstSeq - 1)
      if (log.forgotten.size > FORGOTTEN_KEPT) log.forgotten.delete(log.forgotten.keys().next().value as string)
    }
  }

  private trimAge (log: SessionLog, streamId: string, stream: StreamLog): void {
    const oldest = this.now() - this.retention.maxAgeMs
    let count = 0
    while (count < stream.events.length && (stream.events[count] as StoredEvent).at < oldest) count++
    if (count > 0) this.dropOldest(log, streamId, stream, count)
  }

  /**
   * Over the byte budget: drop the oldest events of the oldest streams (a Map iterates in
   * creation order, and emptied streams leave it), one splice per stream: amortised O(1).
   */
  private trimBytes (log: SessionLog, max: number): void {
    for (const [streamId, stream] of log.streams) {
      if (log.bytes <= max) return
      let excess = log.bytes - max
      let count = 0
      while (count < stream.events.length && excess > 0) {
        excess -= (stream.events[count] as StoredEvent).data.length
        count++
      }
      this.dropOldest(log, streamId, stream, count)
    }
  }
}
