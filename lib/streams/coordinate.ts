/**
 * One round of a shared log's coordination between instances (run from the hub's sweep, one round
 * at a time): leases renewed, followers brought up to date, orphaned streams taken over.
 */
import type { SharedLog, StreamRef } from '../events/store.ts'
import type { StreamHub } from './hub.ts'
import type { LiveStream } from './live-stream.ts'
import { GET_STREAM_ID } from './options.ts'

/**
 * Shared log: renews the leases of the streams this instance feeds, tells the log which remote
 * streams have a client here, brings followers up to date (in case a notification was lost),
 * takes over streams whose owner is gone, and stops detached GET readers nobody follows.
 */
export async function coordinate (hub: StreamHub, shared: SharedLog): Promise<void> {
  const owned: StreamRef[] = []
  const followed: LiveStream[] = []
  for (const [sessionId, streams] of hub.sessions) {
    for (const stream of [streams.get, ...streams.posts.values()]) {
      if (stream === undefined) continue
      if (stream.owned && !stream.done) owned.push([sessionId, stream.id])
      if (stream.remote && stream.writer !== undefined) followed.push(stream)
    }
  }
  await shared.renew(hub.instanceId, hub.options.leaseMs, owned, followed.map((s) => [s.sessionId, s.id] as const))
  for (const stream of followed) {
    const status = await shared.status(stream.sessionId, stream.id)
    if (status === undefined) {
      stream.writer?.end('session')
      continue
    }
    stream.follow(status.lastSeq, status.done)
    if (!status.done && status.owner === undefined && stream.remote && stream.takeOver !== undefined && !stream.takingOver) {
      hub.log.info({ sessionId: stream.sessionId, stream: stream.id }, 'taking over a stream whose instance is gone')
      // Not awaited: feeding the stream lasts as long as the stream, and this round must end.
      stream.takingOver = true
      stream.takeOver(status)
        .catch((err: unknown) => { hub.log.warn({ sessionId: stream.sessionId, stream: stream.id, err }, 'stream take-over failed') })
        .finally(() => { stream.takingOver = false })
    }
  }
  for (const sessionId of hub.expiredGets) {
    hub.expiredGets.delete(sessionId)
    const streams = hub.sessions.get(sessionId)
    if (streams === undefined || streams.get?.writer !== undefined || streams.stopUpstreamGet === undefined) continue
    if (await shared.followed(sessionId, GET_STREAM_ID)) streams.getDetachedAt = hub.now()
    else hub.stopGet(sessionId, streams)
  }
}
