/**
 * A light abort signal for the per-request hot path: an EventEmitter with `aborted`, which undici
 * accepts as a request `signal`. Node's AbortController costs several EventTarget allocations per
 * request; this costs one emitter.
 */
import { EventEmitter } from 'node:events'

export class Abort extends EventEmitter {
  aborted = false

  abort (): void {
    if (this.aborted) return
    this.aborted = true
    this.emit('abort')
  }
}

/** What undici takes as `signal`. */
export type AbortLike = AbortSignal | Abort
