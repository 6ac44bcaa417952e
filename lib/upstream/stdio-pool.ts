/**
 * The children of one stdio upstream over their lives: started for a session, or taken from warm
 * spares (started ahead, so an `initialize` does not wait for a process to start: a Node server
 * takes 100-300 ms to boot, a Python one more), and retired when their lifetime is over or their
 * memory is past the ceiling. A retired child's session ends with a coded error
 * (`MCP_GW_UPSTREAM_EXITED`, saying why): its client re-initialises on a fresh child, which is
 * how a leaking or long-running server is kept healthy without anyone restarting the gateway.
 *
 * A lifetime is over only between requests: a child past it with a call in flight is retired
 * once the call is answered, or after `LIFETIME_GRACE_MS` whatever it is doing. The memory
 * ceiling does not wait: a child past it is stopped at the check that sees it.
 */
import { GatewayErrors } from '../errors.ts'
import type { Logger } from '../logger.ts'
import { StdioChannel, type StdioCommand } from './stdio.ts'

export interface StdioLifecycle {
  /** Children kept started and waiting for a session. 0: each starts with its session. */
  spares: number
  /** Longest a child serves, in ms (retired between requests). 0: no limit. */
  maxLifetimeMs: number
  /** Resident memory a child may use, in bytes (Linux `/proc`). 0: no ceiling. */
  maxMemoryBytes: number
}

export const STDIO_LIFECYCLE_DEFAULTS: StdioLifecycle = { spares: 0, maxLifetimeMs: 0, maxMemoryBytes: 0 }

/** How often lifetimes, memory and spares are looked at (only when one of them is set). */
export const LIFECYCLE_CHECK_MS = 1000
/** How long a child past its lifetime may go on answering the calls it has in flight. */
export const LIFETIME_GRACE_MS = 60_000
/** Spares that died before being used, in a row, after which no more are started ahead. */
const SPARE_FAILURES = 3

export interface ChildrenReport {
  /** Children serving a session. */
  sessions: number
  /** Children started and waiting. */
  spares: number
  /** Spares being started. */
  starting: number
  /** Age of the oldest child, in seconds (0 with none). */
  oldestSeconds: number
  /** Children retired since start, by why. */
  retired: { lifetime: number, memory: number }
  /** Each child now. */
  children: Array<{ pid: number, state: 'session' | 'spare', ageSeconds: number }>
}

export class StdioPool {
  private readonly name: string
  private readonly command: StdioCommand
  private readonly lifecycle: StdioLifecycle
  private readonly log: Logger
  private readonly busy: (label: string) => boolean
  private readonly waiting: StdioChannel[] = []
  /** Children serving sessions: the label (upstream session id) each serves, and since when. */
  private readonly serving = new Map<StdioChannel, { label: string, since: number }>()
  private readonly starting = new Set<Promise<void>>()
  /** Spares that finished starting after close began, being stopped. */
  private readonly late: Array<Promise<void>> = []
  private forced = false
  private timer: NodeJS.Timeout | undefined
  private failures = 0
  private closed = false
  private checking = false
  readonly retired = { lifetime: 0, memory: 0 }

  /** `busy(label)`: the session a child serves has a request in flight. */
  constructor (name: string, command: StdioCommand, lifecycle: StdioLifecycle, log: Logger, busy: (label: string) => boolean) {
    this.name = name
    this.command = command
    this.lifecycle = lifecycle
    this.log = log
    this.busy = busy
  }

  /** The checks run from the first child on (or the first `warm`), not from construction. */
  private watch (): void {
    const { spares, maxLifetimeMs, maxMemoryBytes } = this.lifecycle
    if (this.timer !== undefined || this.closed || (spares === 0 && maxLifetimeMs === 0 && maxMemoryBytes === 0)) return
    this.timer = setInterval(() => { void this.check() }, LIFECYCLE_CHECK_MS)
    this.timer.unref()
  }

  /** A child for the session `label`: a waiting spare when there is one, else a new one. */
  async take (label: string): Promise<StdioChannel> {
    if (this.closed) throw new GatewayErrors.UPSTREAM_UNAVAILABLE(this.name)
    let channel = this.waiting.shift()
    while (channel !== undefined && channel.stopped) channel = this.waiting.shift()
    if (channel === undefined) {
      channel = await StdioChannel.start(this.name, this.command, this.log, label)
    } else {
      channel.relabel(label)
      this.failures = 0
    }
    this.serving.set(channel, { label, since: Date.now() })
    // Gone however it goes (its session ended, it exited, it was retired): forgotten here.
    channel.whenStopped(() => { this.serving.delete(channel) })
    // The spare taken is replaced at once (a burst of sessions meets spares still starting).
    this.warm()
    return channel
  }

  /** Starts spares up to the count (none while spares keep dying, or once closed). */
  warm (): void {
    this.watch()
    while (!this.closed && this.failures < SPARE_FAILURES && this.waiting.length + this.starting.size < this.lifecycle.spares) {
      const started: Promise<void> = StdioChannel.start(this.name, this.command, this.log, 'spare').then((spare) => {
        if (this.forced) spare.kill()
        else if (this.closed) this.late.push(spare.close())
        else this.wait(spare)
      }, (err: unknown) => {
        this.failures++
        this.log.warn({ upstream: this.name, err }, 'a spare stdio child could not be started')
      }).finally(() => { this.starting.delete(started) })
      this.starting.add(started)
    }
  }

  /** A spare waits; one that dies waiting counts toward `SPARE_FAILURES` (and is replaced). */
  private wait (spare: StdioChannel): void {
    this.waiting.push(spare)
    spare.whenStopped(() => {
      const at = this.waiting.indexOf(spare)
      if (at === -1) return
      this.waiting.splice(at, 1)
      this.failures++
    })
  }

  /** Takes a spare off the waiting list before the gateway stops it (that is no failure). */
  private unwait (spare: StdioChannel): void {
    const at = this.waiting.indexOf(spare)
    if (at !== -1) this.waiting.splice(at, 1)
  }

  /**
   * One look at every child: lifetimes over, memory past the ceiling; then spares are started
   * up to the count. A spare's lifetime runs from its start (one that waited that long is
   * replaced, never handed out stale); a session's child's from when it began to serve.
   */
  async check (now = Date.now()): Promise<void> {
    if (this.checking || this.closed) return
    this.checking = true
    try {
      for (const spare of [...this.waiting]) {
        if (this.pastLifetime(spare, spare.startedAt, now, false, () => { this.unwait(spare) })) continue
        if (await this.overMemory(spare, () => { this.unwait(spare) })) continue
      }
      for (const [channel, { label, since }] of [...this.serving]) {
        if (channel.stopped || this.pastLifetime(channel, since, now, this.busy(label))) continue
        await this.overMemory(channel)
      }
      this.warm()
    } finally {
      this.checking = false
    }
  }

  private pastLifetime (channel: StdioChannel, since: number, now: number, busy: boolean, before?: () => void): boolean {
    const { maxLifetimeMs } = this.lifecycle
    const age = now - since
    if (maxLifetimeMs === 0 || age < maxLifetimeMs || (busy && age < maxLifetimeMs + LIFETIME_GRACE_MS)) return false
    before?.()
    this.retired.lifetime++
    this.log.info({ upstream: this.name, childPid: channel.pid, ageMs: age }, 'stdio child retired: its lifetime is over')
    channel.retire(new GatewayErrors.UPSTREAM_EXITED(this.name, `its process reached its maximum lifetime of ${maxLifetimeMs} ms`))
    return true
  }

  private async overMemory (channel: StdioChannel, before?: () => void): Promise<boolean> {
    const ceiling = this.lifecycle.maxMemoryBytes
    if (ceiling === 0) return false
    const rss = await channel.rssBytes()
    if (rss === undefined || rss <= ceiling) return false
    before?.()
    this.retired.memory++
    const mb = (bytes: number): string => (bytes / 1048576).toFixed(0)
    this.log.warn({ upstream: this.name, childPid: channel.pid, rssBytes: rss, maxMemoryBytes: ceiling }, 'stdio child stopped: its memory is past the ceiling')
    channel.retire(new GatewayErrors.UPSTREAM_EXITED(this.name, `its process used ${mb(rss)} MB of memory, over its ceiling of ${mb(ceiling)} MB`))
    return true
  }

  report (now = Date.now()): ChildrenReport {
    const children: ChildrenReport['children'] = []
    const add = (channel: StdioChannel, state: 'session' | 'spare'): void => {
      if (!channel.stopped) children.push({ pid: channel.pid, state, ageSeconds: (now - channel.startedAt) / 1000 })
    }
    for (const channel of this.serving.keys()) add(channel, 'session')
    for (const spare of this.waiting) add(spare, 'spare')
    const sessions = children.filter((child) => child.state === 'session').length
    const oldestSeconds = children.reduce((oldest, child) => Math.max(oldest, child.ageSeconds), 0)
    return { sessions, spares: children.length - sessions, starting: this.starting.size, oldestSeconds, retired: { ...this.retired }, children }
  }

  /** Stops the spares, those still starting too (the sessions' children are their sessions' to close). */
  async close (): Promise<void> {
    this.closed = true
    clearInterval(this.timer)
    const waiting = this.waiting.splice(0).map(async (spare) => await spare.close())
    await Promise.all(this.starting)
    await Promise.all([...waiting, ...this.late])
  }

  /** Kills the spares at once; one still starting is killed when it has started. */
  destroy (): void {
    this.closed = true
    this.forced = true
    clearInterval(this.timer)
    for (const spare of this.waiting.splice(0)) spare.kill()
  }

  /** Children this pool still tracks (serving or waiting), stopped or not: for tests of its bookkeeping. */
  get tracked (): number {
    return this.serving.size + this.waiting.length
  }
}
