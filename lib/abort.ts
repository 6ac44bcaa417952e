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

/**
 * `pending`, or the abort of `signal`, whichever comes first: a request given up (its client
 * gone, its deadline passed) waits no longer for work that goes on for others (a shared token
 * fetch, bounded by its own timeout). Rejects with the signal's reason (an `AbortError`).
 */
export async function untilAborted<T> (pending: Promise<T>, signal: AbortLike | undefined): Promise<T> {
  if (signal === undefined) return await pending
  const reason = (): unknown => signal instanceof Abort ? new DOMException('This operation was aborted', 'AbortError') : signal.reason
  if (signal.aborted) throw reason()
  let onAbort = (): void => {}
  const aborted = new Promise<never>((_resolve, reject) => { onAbort = () => { reject(reason()) } })
  if (signal instanceof Abort) signal.once('abort', onAbort)
  else signal.addEventListener('abort', onAbort, { once: true })
  try {
    return await Promise.race([pending, aborted])
  } finally {
    if (signal instanceof Abort) signal.off('abort', onAbort)
    else signal.removeEventListener('abort', onAbort)
  }
}
