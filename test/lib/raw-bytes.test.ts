/**
 * A lone response goes to the client as the upstream wrote it (a stdio line, a virtual member's
 * JSON body with the client's id put back), and only when that is sure: the id's token found once,
 * as the value of an `"id"` key; bytes that would break an SSE event are encoded afresh.
 */
import t from 'tap'
import { messageEvent, rawOf, singleAnswer, withIdReplaced, withRaw } from '../../lib/upstream/events.ts'
import type { JsonRpcResponse } from '../../lib/jsonrpc.ts'

const replaced = (raw: string, to: string | number): string | undefined => withIdReplaced(Buffer.from(raw), 'vm1', to)?.toString('utf8')

t.test('the member id is replaced by the client id, whatever its type and the spacing', async (t) => {
  t.equal(replaced('{"result":{},"jsonrpc":"2.0","id":"vm1"}', 7), '{"result":{},"jsonrpc":"2.0","id":7}')
  t.equal(replaced('{ "id" : "vm1", "result": {} }', 'a"b'), '{ "id" : "a\\"b", "result": {} }', 'a string id is JSON-encoded')
  t.equal(replaced('{"id":\n\t"vm1","result":{"text":"é ✓"}}', 12345), '{"id":\n\t12345,"result":{"text":"é ✓"}}', 'multi-byte text after the id is kept whole')
})

t.test('anything less than sure is left to be encoded afresh', async (t) => {
  t.equal(replaced('{"result":{"id":"vm1"},"id":"vm1"}', 7), undefined, 'the token twice (a nested id)')
  t.equal(replaced('{"result":{"text":"a\\"vm1"},"id":"vm1"}', 7), undefined, 'the token inside a string too')
  t.equal(replaced('{"result":{"other":"vm1"},"id":"\\u0076m1"}', 7), undefined, 'the one token is not the id key\'s value')
  t.equal(replaced('{"result":{},"id":"vm2"}', 7), undefined, 'no token at all')
  t.equal(replaced('{"result":{"\\"id":"vm1"},"id":"\\u0076m1"}', 7), undefined, 'a key that only ends in "id"')
  t.equal(replaced('{"id":"v\\u006d1","result":{"structuredContent":{"id":"vm1"}}}', 7), undefined, 'the id in escapes, a nested one plain: not patched in the wrong place')
})

t.test('the bytes ride with the message, not with a copy of it, and never into JSON', async (t) => {
  const message: JsonRpcResponse = { jsonrpc: '2.0', id: 1, result: {} }
  const raw = Buffer.from('{"jsonrpc":"2.0", "id":1, "result":{}}')
  withRaw(message, raw)
  t.equal(rawOf(message), raw)
  t.equal(rawOf({ ...message }), undefined, 'a copy made to change it has none')
  t.equal(JSON.stringify(message), '{"jsonrpc":"2.0","id":1,"result":{}}')
  const answer = singleAnswer(message)
  t.equal(answer.kind === 'single' ? answer.raw : undefined, raw, 'a whole answer carries them')
  t.equal(messageEvent(message).data, raw.toString('utf8'), 'an event carries them as its data')
  const pretty = withRaw({ jsonrpc: '2.0', id: 2, result: {} } as JsonRpcResponse, Buffer.from('{\n  "jsonrpc": "2.0",\r\n  "id": 2,\n  "result": {}\n}'))
  t.equal(messageEvent(pretty).data, '{"jsonrpc":"2.0","id":2,"result":{}}', 'bytes with line breaks are not an SSE event\'s data')
})
