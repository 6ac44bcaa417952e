/**
 * The admin API's live feed: events (calls held and decided, pins changed and approved, sessions
 * ended, policy reloads) sent as SSE to every console listening. A listener that does not read
 * is dropped rather than buffered without bound; the feed is bounded in listeners too.
 */
import type { ServerResponse } from 'node:http'

export interface FeedEvent {
  type: string
  data: unknown
}

/** A listener this far behind (bytes not yet taken by its socket) is dropped. */
const BACKLOG_MAX = 1024 * 1024
/** A comment line this often keeps proxies from closing an idle feed. */
const HEARTBEAT_MS = 15_000

export class AdminFeed {
  private readonly listeners = new Set<ServerResponse>()
  private readonly max: number
  private readonly timer: NodeJS.Timeout
  private nextId = 1

  constructor (max: number) {
    this.max = max
    this.timer = setInterval(() => { this.write(': heartbeat\n\n') }, HEARTBEAT_MS)
    this.timer.unref()
  }

  get size (): number {
    return this.listeners.size
  }

  /**
   * Takes an SSE response; false when the feed is full. A client gone already (while its request
   * was authenticated) is not added: its 'close' has fired, and nothing would ever remove it.
   */
  add (res: ServerResponse, headers: Record<string, string | number | string[]> = {}): 'added' | 'gone' | 'full' {
    if (res.destroyed || res.socket === null || res.socket.destroyed) return 'gone'
    if (this.listeners.size >= this.max) return 'full'
    res.writeHead(200, { ...headers, 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive', 'x-accel-buffering': 'no' })
    res.write(': connected\n\n')
    this.listeners.add(res)
    res.once('close', () => { this.listeners.delete(res) })
    return 'added'
  }

  publish (event: FeedEvent): void {
    if (this.listeners.size === 0) return
    this.write(`id: ${this.nextId++}\nevent: ${event.type}\ndata: ${JSON.stringify(event.data)}\n\n`)
  }

  private write (text: string): void {
    for (const res of this.listeners) {
      if (res.writableLength > BACKLOG_MAX) {
        this.listeners.delete(res)
        res.destroy()
        continue
      }
      res.write(text)
    }
  }

  /** Ends every feed (the server closes: before it waits for open requests). */
  close (): void {
    clearInterval(this.timer)
    for (const res of this.listeners) res.end()
    this.listeners.clear()
  }
}
