/**
 * The demo server's event store (what makes it resumable): every event of every stream gets the
 * next number, and a replay sends the asked stream's events after the given one, in order. The
 * SDK's example store is not used: it derives the stream from the id's text before the first `_`,
 * which breaks for the standalone GET stream (`_GET_stream`), and it orders events by a random
 * suffix within one millisecond.
 */
import type { EventStore } from '@modelcontextprotocol/sdk/server/streamableHttp.js'
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js'

export class DemoEventStore implements EventStore {
  private counter = 0
  private readonly streams = new Map<string, Array<{ id: string, message: JSONRPCMessage }>>()
  private readonly streamOf = new Map<string, string>()

  async storeEvent (streamId: string, message: JSONRPCMessage): Promise<string> {
    const id = `e${++this.counter}`
    let events = this.streams.get(streamId)
    if (events === undefined) {
      events = []
      this.streams.set(streamId, events)
    }
    events.push({ id, message })
    this.streamOf.set(id, streamId)
    return id
  }

  async getStreamIdForEventId (eventId: string): Promise<string | undefined> {
    return this.streamOf.get(eventId)
  }

  async replayEventsAfter (lastEventId: string, { send }: { send: (eventId: string, message: JSONRPCMessage) => Promise<void> }): Promise<string> {
    const streamId = this.streamOf.get(lastEventId)
    if (streamId === undefined) throw new Error(`unknown event id ${lastEventId}`)
    const events = this.streams.get(streamId) ?? []
    const from = events.findIndex((event) => event.id === lastEventId) + 1
    for (const event of events.slice(from)) await send(event.id, event.message)
    return streamId
  }
}
