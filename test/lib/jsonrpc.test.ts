import t from 'tap'
import { INVALID_REQUEST, PARSE_ERROR, errorResponse, isNotification, isRequest, isResponse, messageKind, parseMessages, toMessages } from '../../lib/jsonrpc.ts'

t.test('messageKind classifies valid messages', async (t) => {
  t.equal(messageKind({ jsonrpc: '2.0', id: 1, method: 'ping' }), 'request')
  t.equal(messageKind({ jsonrpc: '2.0', id: 'a', method: 'tools/call', params: { name: 'x' } }), 'request')
  t.equal(messageKind({ jsonrpc: '2.0', method: 'notifications/initialized' }), 'notification')
  t.equal(messageKind({ jsonrpc: '2.0', id: 1, result: {} }), 'response')
  t.equal(messageKind({ jsonrpc: '2.0', id: 1, error: { code: -1, message: 'x' } }), 'error')
  t.equal(messageKind({ jsonrpc: '2.0', id: null, error: { code: -32700, message: 'x', data: 1 } }), 'error')
})

t.test('messageKind rejects invalid shapes', async (t) => {
  const invalid: unknown[] = [
    null, 1, 'x', [], {},
    { jsonrpc: '1.0', id: 1, method: 'ping' },
    { jsonrpc: '2.0', id: null, method: 'ping' },
    { jsonrpc: '2.0', id: {}, method: 'ping' },
    { jsonrpc: '2.0', id: Number.NaN, method: 'ping' },
    { jsonrpc: '2.0', id: 1, method: 'ping', params: [1] },
    { jsonrpc: '2.0', id: 1, method: 'ping', params: 'x' },
    { jsonrpc: '2.0', method: 7 },
    { jsonrpc: '2.0', id: 1, result: 'x' },
    { jsonrpc: '2.0', id: null, result: {} },
    { jsonrpc: '2.0', id: 1, result: {}, error: { code: 1, message: 'x' } },
    { jsonrpc: '2.0', id: 1, error: 'x' },
    { jsonrpc: '2.0', id: 1, error: { code: 1.5, message: 'x' } },
    { jsonrpc: '2.0', id: 1, error: { code: 1 } },
    { jsonrpc: '2.0', id: [], error: { code: 1, message: 'x' } }
  ]
  for (const value of invalid) t.equal(messageKind(value), undefined, JSON.stringify(value))
})

t.test('guards', async (t) => {
  const request = { jsonrpc: '2.0' as const, id: 1, method: 'ping' }
  const notification = { jsonrpc: '2.0' as const, method: 'x' }
  const response = { jsonrpc: '2.0' as const, id: 1, result: {} }
  t.ok(isRequest(request))
  t.notOk(isRequest(notification))
  t.ok(isNotification(notification))
  t.notOk(isNotification(request))
  t.ok(isResponse(response))
  t.notOk(isResponse(request))
})

t.test('parseMessages gives exact error codes', async (t) => {
  const bad = parseMessages('{"jsonrpc":')
  t.equal(bad.ok, false)
  t.equal(!bad.ok && bad.code, PARSE_ERROR)
  const shape = parseMessages('{"jsonrpc":"2.0"}')
  t.equal(!shape.ok && shape.code, INVALID_REQUEST)
  const empty = parseMessages('[]')
  t.match(!empty.ok && empty.message, /empty batch/)
  const item = parseMessages('[{"jsonrpc":"2.0","method":"a"},{"x":1}]')
  t.match(!item.ok && item.message, /batch item 1/)
  const one = parseMessages('{"jsonrpc":"2.0","id":1,"method":"ping"}')
  t.same(one, { ok: true, messages: [{ jsonrpc: '2.0', id: 1, method: 'ping' }], batch: false })
  const many = toMessages([{ jsonrpc: '2.0', id: 1, method: 'ping' }, { jsonrpc: '2.0', method: 'n' }])
  t.equal(many.ok && many.messages.length, 2)
  t.equal(many.ok && many.batch, true)
})

t.test('errorResponse', async (t) => {
  t.same(errorResponse(3, -32000, 'm'), { jsonrpc: '2.0', id: 3, error: { code: -32000, message: 'm' } })
  t.same(errorResponse(null, -32000, 'm', { a: 1 }), { jsonrpc: '2.0', id: null, error: { code: -32000, message: 'm', data: { a: 1 } } })
})

t.test('parseMessages applies a prototype-poisoning policy', async (t) => {
  const policy = (protoAction: 'error' | 'remove' | 'ignore', constructorAction: 'error' | 'remove' | 'ignore') => ({ protoAction, constructorAction })
  const proto = '{"jsonrpc":"2.0","id":1,"method":"x","params":{"a":{"__proto__":{"p":1}}}}'
  // Every letter escaped: only the parsed value shows the key.
  const escaped = '{"jsonrpc":"2.0","id":1,"method":"x","params":{"\\u005f\\u005f\\u0070\\u0072\\u006f\\u0074\\u006f\\u005f\\u005f":{"p":1}}}'
  const ctor = '[{"jsonrpc":"2.0","id":1,"method":"x","params":{"constructor":{"prototype":{}}}},{"jsonrpc":"2.0","method":"y"}]'
  for (const text of [proto, escaped, ctor]) {
    t.same(parseMessages(text, policy('error', 'error')), { ok: false, code: INVALID_REQUEST, message: 'Invalid Request: object contains forbidden prototype property' }, text)
    t.equal(parseMessages(text).ok, true, 'no policy: nothing looked for')
    t.equal(parseMessages(text, policy('ignore', 'ignore')).ok, true)
  }
  const removed = parseMessages(proto, policy('remove', 'error'))
  t.equal(removed.ok && removed.removed, true, 'removed is reported')
  t.notOk(removed.ok && Object.hasOwn((removed.messages[0] as unknown as { params: { a: object } }).params.a, '__proto__'))
  const batch = parseMessages(ctor, policy('error', 'remove'))
  t.same(batch.ok && batch.messages, [{ jsonrpc: '2.0', id: 1, method: 'x', params: {} }, { jsonrpc: '2.0', method: 'y' }])
  t.equal(parseMessages(ctor, policy('error', 'ignore')).ok, true, 'each key its own setting')
  const clean = parseMessages('{"jsonrpc":"2.0","id":1,"method":"x","params":{"constructor":"a name","text":"\\u00e9"}}', policy('remove', 'remove'))
  t.equal(clean.ok && clean.removed, undefined, 'nothing removed: the original text can be forwarded')
})
