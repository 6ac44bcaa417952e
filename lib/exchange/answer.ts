/**
 * What an exchange gives its client adapter to deliver: lib decides the answer in messages, the
 * adapter (the Fastify route, the WebSocket connection) owns the reply and writes it in its own
 * terms (HTTP statuses and bodies, frames). Nothing here calls back into a framework.
 */
import type { Readable } from 'node:stream'
import type { Sink } from '../streams/client-writer.ts'
import type { JsonRpcMessage } from '../jsonrpc.ts'
import type { SessionRecord } from '../session/store.ts'
import type { RefusedReply } from '../upstream/http-answer.ts'

/** Copied with `Object.assign`, not spread: a spread of dashed keys takes V8's slow path (~1 µs). */
export const SSE_HEADERS = { 'content-type': 'text/event-stream', 'cache-control': 'no-cache, no-transform', 'x-accel-buffering': 'no' } as const

/**
 * Whole messages for the client: a JSON body over HTTP, one frame each over a WebSocket. None is
 * nothing to say (HTTP: 202 to a POST, 200 to a DELETE). `raw` is the upstream's own bytes for
 * them, when nothing changed them.
 */
export interface MessagesAnswer {
  kind: 'messages'
  messages: JsonRpcMessage[]
  batch: boolean
  raw: Buffer | undefined
  headers: Record<string, string>
}

/** The upstream's own refusal (a 4xx), for the client as the upstream sent it. */
export interface RefusedAnswer {
  kind: 'refused'
  reply: RefusedReply
}

/** An unlogged SSE answer: its body relays the upstream's events as they come. */
export interface SseAnswer {
  kind: 'sse'
  headers: Record<string, string>
  body: Readable
  /**
   * The server's own stream (GET): its headers should leave as soon as the body is read, since
   * its first event may be hours away. A POST's headers leave with its first event.
   */
  live: boolean
}

/**
 * A logged SSE answer: the adapter sends status 200 with `headers`, then hands over the raw
 * response as a sink; from then the event log writes to it (and a client cut off resumes).
 */
export interface LoggedAnswer {
  kind: 'logged'
  headers: Record<string, string>
  attach: (sink: Sink) => Promise<void>
  /**
   * The adapter could not open the response (its head failed): the stream is given up, its
   * upstream answer let go, its requests cancelled upstream. Not called once attached.
   */
  release: () => void
}

/** Delivered already, as WebSocket frames through the exchange's frame sink. */
export interface FramedAnswer {
  kind: 'framed'
}

export type ClientAnswer = MessagesAnswer | RefusedAnswer | SseAnswer | LoggedAnswer | FramedAnswer

/**
 * The WebSocket client's sink: each message of an answer (whole or streamed) and of the server's
 * stream goes out as one text frame, as it comes.
 */
export interface FrameSink {
  send: (text: string) => void
  /**
   * Called once an `initialize` opened a gateway session, before any of its answer reaches the
   * client: the connection holds its session from then on, since the client may go on as soon as
   * it reads the answer, while the upstream's stream is still open.
   */
  sessionOpened: (session: SessionRecord) => void
}

export function messagesAnswer (messages: JsonRpcMessage[], batch: boolean, raw: Buffer | undefined = undefined, headers: Record<string, string> = {}): MessagesAnswer {
  return { kind: 'messages', messages, batch, raw, headers }
}

/** Nothing to say: the request was taken. */
export function noAnswer (headers: Record<string, string> = {}): MessagesAnswer {
  return messagesAnswer([], false, undefined, headers)
}
