/**
 * The message-level upstream's two halves, below the exchange: the event flow every answer reader
 * takes (order, flow control, stop), and the Streamable HTTP side that alone reads HTTP: an SSE
 * body as events, and each HTTP answer or failure as one `UpstreamAnswer` or one coded error.
 */
import t from 'tap'
import { Readable } from 'node:stream'
import { UpstreamEvents, type UpstreamEvent } from '../../lib/upstream/events.ts'
import { answerFromHttp, refusedReply, sseEvents } from '../../lib/upstream/http-answer.ts'
import type { UpstreamHttpResponse, UpstreamSend } from '../../lib/upstream/types.ts'
import type { JsonRpcMessage } from '../../lib/jsonrpc.ts'

function producer (): { calls: string[], events: UpstreamEvents } {
  const calls: string[] = []
  const events = new UpstreamEvents({ pause: () => calls.push('pause'), resume: () => calls.push('resume'), stop: () => calls.push('stop') })
  return { calls, events }
}

const event = (n: number): UpstreamEvent => ({ data: String(n) })

t.test('events pushed before the reader came, and while it is paused, arrive in order, then the end', async (t) => {
  const { calls, events } = producer()
  events.push(event(1))
  events.push(event(2))
  t.same(calls, ['pause'], 'the producer is held back once while events wait')
  const seen: string[] = []
  let ended: Error | undefined | 'no' = 'no'
  events.read((e) => {
    seen.push(e.data)
    if (e.data === '3') events.pause()
  }, (error) => { ended = error })
  t.same(seen, ['1', '2'])
  t.same(calls, ['pause', 'resume'], 'resumed once the queue is empty')
  events.push(event(3))
  events.push(event(4))
  events.end()
  t.same(seen, ['1', '2', '3'], 'paused after 3: 4 waits')
  t.equal(ended, 'no', 'the end waits behind the events before it')
  events.resume()
  t.same(seen, ['1', '2', '3', '4'])
  t.equal(ended, undefined, 'a clean end')
  events.push(event(5))
  t.same(seen, ['1', '2', '3', '4'], 'nothing after the end')
})

t.test('a reader that stops: the producer is told, the reader hears a break, once', async (t) => {
  const { calls, events } = producer()
  const ends: Array<Error | undefined> = []
  let finished = 0
  events.onFinish(() => { finished++ })
  events.read(() => {}, (error) => ends.push(error))
  events.destroy(new Error('deadline'))
  events.destroy()
  events.end()
  t.same(ends, [], 'heard on the next tick, as a Node stream\'s close')
  await new Promise((resolve) => process.nextTick(resolve))
  t.same(calls.filter((call) => call === 'stop'), ['stop'], 'the producer is told once')
  t.equal(ends.length, 1)
  t.match(ends[0], { message: 'deadline' })
  t.equal(finished, 1)
})

t.test('a flow over before its reader came: the reader and a late watcher still hear the end', async (t) => {
  const { events } = producer()
  events.destroy(new Error('deadline'))
  let finished = 0
  events.onFinish(() => { finished++ })
  t.equal(finished, 1, 'a watcher that comes after the end is told at once')
  const seen: string[] = []
  const end = await new Promise<Error | undefined>((resolve) => events.read((e) => seen.push(e.data), resolve))
  t.match(end, { message: 'deadline' }, 'the break it ended with')
  t.same(seen, [])
  const { events: ended } = producer()
  ended.push(event(1))
  ended.end()
  const got: string[] = []
  const clean = await new Promise<Error | undefined>((resolve) => ended.read((e) => got.push(e.data), resolve))
  t.equal(clean, undefined)
  t.same(got, ['1'], 'what was pushed before the end is read first')
})

t.test('a push from inside the reader\'s own callback waits its turn', async (t) => {
  const { events } = producer()
  const trail: string[] = []
  let ended = false
  events.read((e) => {
    trail.push(`start ${e.data}`)
    if (e.data === '1') {
      events.push(event(2))
      events.end()
    }
    trail.push(`end ${e.data}`)
  }, () => {
    trail.push('over')
    ended = true
  })
  events.push(event(1))
  t.same(trail, ['start 1', 'end 1', 'start 2', 'end 2', 'over'], 'in order, never nested')
  t.ok(ended)
})

t.test('an SSE body as events: split anywhere, ids kept; a broken body is a break', async (t) => {
  const text = 'id: a\ndata: {"jsonrpc":"2.0","method":"x"}\n\nid: b\ndata: \n\nevent: other\ndata: hi\n\n'
  const bytes = Buffer.from(text)
  const chunks = [bytes.subarray(0, 7), bytes.subarray(7, 30), bytes.subarray(30)]
  const events = sseEvents(Readable.from(chunks))
  const seen: UpstreamEvent[] = []
  const ended = await new Promise<Error | undefined>((resolve) => events.read((e) => seen.push(e), resolve))
  t.equal(ended, undefined)
  t.same(seen.map((e) => [e.id, e.data, e.event]), [['a', '{"jsonrpc":"2.0","method":"x"}', undefined], ['b', '', undefined], [undefined, 'hi', 'other']])

  const body = new Readable({ read () {} })
  body.push('data: {"jsonrpc":"2.0","method":"x"}\n\ndata: half')
  const broken = sseEvents(body)
  const got: string[] = []
  const end = new Promise<Error | undefined>((resolve) => broken.read((e) => got.push(e.data), resolve))
  await new Promise((resolve) => setImmediate(resolve))
  body.destroy()
  t.match(await end, { message: 'upstream stream closed' }, 'a body closed mid-event is a break, not an end')
  t.equal(got.length, 1, 'never half an event')
})

const request = (messages: JsonRpcMessage[], headers: Record<string, string> = {}, opensSession = false): UpstreamSend =>
  ({ headers, body: JSON.stringify(messages[0]), messages, opensSession, maxBytes: 1024 })
const call: JsonRpcMessage = { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'x' } }
const note: JsonRpcMessage = { jsonrpc: '2.0', method: 'notifications/initialized' }

function res (status: number, headers: Record<string, string>, body = ''): UpstreamHttpResponse {
  return { status, headers, body: Readable.from(body === '' ? [] : [Buffer.from(body)]) }
}

t.test('an HTTP answer as messages: JSON whole (its own bytes kept), SSE as events, 202 as accepted', async (t) => {
  const raw = '{"jsonrpc":"2.0","id":1,"result":{}}'
  const json = await answerFromHttp('up', res(200, { 'content-type': 'application/json; charset=utf-8', 'mcp-session-id': 's-1' }, raw), request([call], {}, true))
  t.match(json, { kind: 'single', sessionId: 's-1', batch: false, messages: [{ id: 1, result: {} }] })
  t.equal((json as { raw: Buffer }).raw.toString(), raw, 'forwarded as received when nothing changes it')
  const sse = await answerFromHttp('up', res(200, { 'content-type': 'text/event-stream' }, `data: ${raw}\n\n`), request([call]))
  t.equal(sse.kind, 'stream')
  const accepted = await answerFromHttp('up', res(202, {}), request([note]))
  t.same(accepted, { kind: 'accepted', sessionId: undefined })
  const notOpening = await answerFromHttp('up', res(200, { 'content-type': 'application/json', 'mcp-session-id': 's-2' }, raw), request([call], { 'mcp-session-id': 's-1' }))
  t.equal(notOpening.kind === 'single' && notOpening.sessionId, undefined, 'only an opening answer names a session')
})

t.test('HTTP failures come out as one coded error each', async (t) => {
  const withSession = { 'mcp-session-id': 's-1' }
  await t.rejects(answerFromHttp('up', res(404, {}), request([call], withSession)), { code: 'MCP_GW_UPSTREAM_SESSION_GONE', upstreamStatus: 404 })
  await t.rejects(answerFromHttp('up', res(401, { 'www-authenticate': 'Bearer' }), request([call])), { code: 'MCP_GW_UPSTREAM_AUTH', upstreamStatus: 401 })
  await t.rejects(answerFromHttp('up', res(503, {}), request([call])), { code: 'MCP_GW_UPSTREAM_ERROR', upstreamStatus: 503 })
  const own = '{"jsonrpc":"2.0","id":null,"error":{"code":-32000,"message":"Bad Request: Unsupported protocol version"}}'
  const refusal = await answerFromHttp('up', res(400, { 'content-type': 'application/json' }, own), request([call])).catch((err: unknown) => err)
  t.same(refusedReply(refusal), { status: 400, headers: { 'content-type': 'application/json' }, body: Buffer.from(own) }, 'a 4xx with a JSON-RPC body is the client\'s to see, as sent')
  const bare = await answerFromHttp('up', res(405, { allow: 'POST', 'content-type': 'text/plain' }, 'no'), request([call])).catch((err: unknown) => err)
  t.match(refusedReply(bare), { status: 405, headers: { allow: 'POST' } })
  t.match(JSON.parse(String(refusedReply(bare)?.body)), { error: { code: -32000, message: 'Upstream answered HTTP 405' } })
  await t.rejects(answerFromHttp('up', res(200, { 'content-type': 'application/json' }, '{"no":1}'), request([call])), { code: 'MCP_GW_UPSTREAM_BAD_RESPONSE' })
  await t.rejects(answerFromHttp('up', res(200, { 'content-type': 'application/json' }, `[${'1,'.repeat(600)}1]`), request([call])), { code: 'MCP_GW_UPSTREAM_BAD_RESPONSE', message: /larger than 1024/ })
  await t.rejects(answerFromHttp('up', res(200, { 'content-type': 'text/plain' }, 'hi'), request([call])), { code: 'MCP_GW_UPSTREAM_BAD_RESPONSE', message: /unexpected content type/ })
  t.same(await answerFromHttp('up', res(200, { 'content-type': 'text/plain' }, 'hi'), request([note])), { kind: 'accepted', sessionId: undefined }, 'a notification expects no answer')
  await t.rejects(answerFromHttp('up', res(200, { 'content-type': 'application/json', 'mcp-session-id': 'bad id' }, '{}'), request([call], {}, true)), { code: 'MCP_GW_UPSTREAM_BAD_RESPONSE', message: /visible ASCII/ })
})
