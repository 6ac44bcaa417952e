/**
 * The requests one exchange still has to answer, the one tracker every answer path (JSON body,
 * logged and unlogged SSE streams, WebSocket frames through them) keeps: every request gets
 * exactly one answer, and a response it does not expect is dropped and counted with the reason.
 *
 * It is the Set of the ids still open (answered and cancelled ones leave it), so it goes where a
 * set of ids went; it also remembers every id it was asked, to tell a second answer (`duplicate`)
 * and an answer to a request the client cancelled (`cancelled`) from one nobody asked (`stray`).
 * Both memories are bounded by the requests of the exchange.
 */
import type { JsonRpcId } from '../jsonrpc.ts'

export type DropReason = 'stray' | 'duplicate' | 'cancelled'

export class PendingRequests extends Set<JsonRpcId> {
  private readonly asked = new Set<JsonRpcId>()
  /** Made at the first cancellation: most exchanges see none, and this runs for every one. */
  private cancelled: Set<JsonRpcId> | undefined
  /** Told about each response dropped (metrics). */
  onDrop: ((reason: DropReason) => void) | undefined

  constructor (ids?: Iterable<JsonRpcId>, onDrop?: (reason: DropReason) => void) {
    // Set's own constructor would call `add` before the fields above exist.
    super()
    this.onDrop = onDrop
    if (ids !== undefined) for (const id of ids) this.add(id)
  }

  override add (id: JsonRpcId): this {
    this.asked.add(id)
    return super.add(id)
  }

  /** The client cancelled it: no answer is owed; one that comes all the same is dropped. */
  cancel (id: JsonRpcId): boolean {
    if (!super.delete(id)) return false
    this.cancelled ??= new Set()
    this.cancelled.add(id)
    return true
  }

  /** A response with this id is dropped: why, also told to `onDrop`. */
  drop (id: JsonRpcId): DropReason {
    const reason: DropReason = this.cancelled?.has(id) === true ? 'cancelled' : this.asked.has(id) ? 'duplicate' : 'stray'
    this.onDrop?.(reason)
    return reason
  }
}
