import t from 'tap'
import { ERROR_TABLE, GatewayErrors, toJsonRpcError } from '../../lib/errors.ts'

t.test('every coded error maps to its status and JSON-RPC code', async (t) => {
  const codes = new Set<number>()
  for (const spec of ERROR_TABLE) {
    t.match(spec.code, /^MCP_GW_/)
    const rpc = toJsonRpcError({ code: spec.code, message: 'm' }, 5)
    t.equal(rpc.status, spec.status, spec.code)
    t.equal(rpc.body.error.code, spec.rpcCode, spec.code)
    t.equal(rpc.body.id, 5)
    if (spec.rpcCode <= -32050 && spec.rpcCode >= -32079) {
      t.notOk(codes.has(spec.rpcCode), `${spec.code}: gateway codes are unique`)
      codes.add(spec.rpcCode)
    }
  }
})

t.test('errors keep their cause and format their message', async (t) => {
  const cause = new Error('ECONNREFUSED')
  const err = new GatewayErrors.UPSTREAM_UNAVAILABLE('github', { cause })
  t.equal(err.message, 'Upstream github is unavailable')
  t.equal(err.cause, cause)
  t.equal(err.statusCode, 502)
})

t.test('foreign errors map by status without leaking internals', async (t) => {
  t.equal(toJsonRpcError({ statusCode: 413, message: 'too big' }).body.error.code, -32051)
  t.equal(toJsonRpcError({ statusCode: 415, message: 'x' }).status, 415)
  t.same(toJsonRpcError({ statusCode: 400, message: 'bad' }), { status: 400, body: { jsonrpc: '2.0', id: null, error: { code: -32600, message: 'bad' } } })
  t.same(toJsonRpcError(new Error('secret stack detail')), { status: 500, body: { jsonrpc: '2.0', id: null, error: { code: -32603, message: 'Internal error' } } })
})
