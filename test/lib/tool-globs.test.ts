/**
 * Tool globs against client-chosen names, in the three places that match them (interceptor
 * `match.tool`, the `allowTools`/`block` rules, per-tool authorization): linear in the name's
 * length (a long name cannot stall the event loop) and `*` matches any character, line
 * terminators included (a deny rule must not fail open on `\n`).
 */
import t from 'tap'
import { InterceptorChain, type InterceptorContext, type Outcome } from '../../lib/interceptors/chain.ts'
import { compileRules } from '../../lib/interceptors/rules.ts'
import { checkToolRules, toolRuleInterceptors } from '../../lib/auth/tool-rules.ts'
import type { JsonRpcMessage } from '../../lib/jsonrpc.ts'

const silent = { error () {}, warn () {}, info () {}, debug () {}, trace () {}, fatal () {}, child () { return silent } } as unknown as InterceptorContext['log']
const base: Omit<InterceptorContext, 'kind'> = { direction: 'client_to_upstream', session: undefined, upstream: 'default', config: undefined, log: silent, request: undefined, principal: { id: 'alice', scopes: [] } as unknown as InterceptorContext['principal'] }

const call = (name: string): JsonRpcMessage => ({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name, arguments: {} } })

async function outcome (chain: InterceptorChain, message: JsonRpcMessage): Promise<Outcome> {
  return await chain.run(message, base)
}

const blocked = (o: Outcome): boolean => o.kind === 'answer' && 'error' in o.answer && o.answer.error.code === -32055

t.test('match.tool: * matches line terminators', async (t) => {
  let seen = 0
  const chain = new InterceptorChain({}, [{ name: 'watch', match: { tool: 'danger*' }, handler: () => { seen++ } }])
  for (const name of ['danger', 'dangerous', 'danger\nx', 'danger\r\n', 'danger\u2028x', 'danger\u2029']) {
    seen = 0
    await outcome(chain, call(name))
    // Escaped by hand: JSON keeps U+2028 as it is, and it would break the TAP line.
    t.equal(seen, 1, `matches ${JSON.stringify(name).replace(/[\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16)}`)}`)
  }
  seen = 0
  await outcome(chain, call('\ndanger'))
  t.equal(seen, 0, 'the glob is anchored')
})

t.test('block rule: a tool name with a newline is still blocked (no fail-open)', async (t) => {
  const chain = new InterceptorChain({}, compileRules([{ block: { tool: '*delete*' } }]))
  t.ok(blocked(await outcome(chain, call('delete_all'))))
  t.ok(blocked(await outcome(chain, call('x\ndelete\ny'))), 'newlines around the match')
  t.ok(blocked(await outcome(chain, call('a.b\ndelete'))))
  t.equal((await outcome(chain, call('echo'))).kind, 'forward')
})

t.test('allowTools: a listed glob allows names with line terminators, nothing else', async (t) => {
  const chain = new InterceptorChain({}, compileRules([{ allowTools: ['read_*', 'echo'] }]))
  t.equal((await outcome(chain, call('read_\nfile'))).kind, 'forward')
  t.equal((await outcome(chain, call('echo'))).kind, 'forward')
  t.ok(blocked(await outcome(chain, call('echo\n'))), 'exact names stay exact')
  t.ok(blocked(await outcome(chain, call('write'))))
})

t.test('tool authorization: globs on tool and principal ids match line terminators', async (t) => {
  const chain = new InterceptorChain({}, toolRuleInterceptors(checkToolRules([{ principals: ['ali*'], tools: ['safe_*'] }])))
  t.equal((await outcome(chain, call('safe_\nx'))).kind, 'forward')
  t.ok(blocked(await outcome(chain, call('unsafe'))))
  const multiline = await chain.run(call('safe_x'), { ...base, principal: { id: 'ali\nce', scopes: [] } as unknown as InterceptorContext['principal'] })
  t.equal(multiline.kind, 'forward', 'principal glob')
  const everything = new InterceptorChain({}, toolRuleInterceptors(checkToolRules([{ tools: ['*'] }])))
  const nameless = { jsonrpc: '2.0' as const, id: 9, method: 'tools/call', params: { arguments: {} } }
  t.ok(blocked(await everything.run(nameless, { ...base, principal: { id: 'alice', scopes: [], method: 'api-key' } })), 'a call naming no tool is granted by no rule, not even "*"')
})

t.test('a long tool name is matched in linear time in every place', async (t) => {
  // 64 KiB of near-misses: a backtracking `^.*a.*b$` takes seconds on this, a linear matcher
  // well under a millisecond. The bound leaves room for a busy machine.
  const name = 'a'.repeat(64 * 1024)
  const chains = {
    'match.tool': new InterceptorChain({}, [{ name: 'w', match: { tool: '*a*b' }, handler: () => ({ action: 'block' }) }]),
    block: new InterceptorChain({}, compileRules([{ block: { tool: '*a*b' } }])),
    allowTools: new InterceptorChain({}, compileRules([{ allowTools: ['*a*b'] }])),
    auth: new InterceptorChain({}, toolRuleInterceptors(checkToolRules([{ tools: ['*a*b'] }])))
  }
  for (const [where, chain] of Object.entries(chains)) {
    const started = performance.now()
    await outcome(chain, call(name))
    const ms = performance.now() - started
    t.ok(ms < 250, `${where}: ${ms.toFixed(1)} ms`)
  }
})
