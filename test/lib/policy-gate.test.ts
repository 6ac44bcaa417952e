/**
 * The policy's interceptors and file watcher on their own: a malformed list entry is left out (no
 * failure for the rest), a policy that cannot decide blocks whatever the chain's `onError` says,
 * and one watcher of a file closing leaves another watching it.
 */
import t from 'tap'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { InterceptorChain, type InterceptorContext } from '../../lib/interceptors/chain.ts'
import type { JsonRpcMessage } from '../../lib/jsonrpc.ts'
import { PolicyFileWatcher } from '../../lib/policy/file.ts'
import { PolicyGate } from '../../lib/policy/gate.ts'
import { Policy } from '../../lib/policy/policy.ts'
import { eventually } from '../helpers/peers.ts'

const silent = { debug () {}, info () {}, warn () {}, error () {} }
const base = { session: undefined, upstream: 'up', config: undefined, log: silent }
const request = { jsonrpc: '2.0' as const, id: 1, method: 'tools/list' }

t.test('a list entry that is not an object is left out; the rest is filtered as ever', async (t) => {
  const chain = new InterceptorChain({}, new PolicyGate(new Policy({ rules: [{ name: 'no-x', effect: 'deny', when: 'tool.name == "x"' }] })).interceptors())
  const answer = { jsonrpc: '2.0', id: 1, result: { tools: [null, 7, { name: 'x' }, { name: 'y' }] } } as unknown as JsonRpcMessage
  const outcome = await chain.run(answer, { ...base, direction: 'upstream_to_client', request } as Omit<InterceptorContext, 'kind'>)
  t.same(outcome.kind === 'forward' ? (outcome.message as unknown as { result: { tools: unknown[] } }).result.tools : outcome, [{ name: 'y' }])
})

t.test('a policy that cannot decide blocks, even on a chain that fails open', async (t) => {
  const chain = new InterceptorChain({ onError: 'open', timeoutMs: 1000 }, new PolicyGate(new Policy({ rules: [{ name: 'r', effect: 'deny', when: 'upstream.member == "m"' }] })).interceptors())
  const broken = { ...base, direction: 'client_to_upstream', request: undefined, memberOf: () => { throw new Error('catalog gone') } } as Omit<InterceptorContext, 'kind'>
  const outcome = await chain.run({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'a', arguments: {} } }, broken)
  t.match(outcome, { kind: 'answer', answer: { error: { code: -32055, message: /the policy could not decide/ } } })
})

t.test('two watchers of one file: closing one leaves the other reloading (its events and its own poll); a missing file is said once', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'policy-watch-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const file = join(dir, 'policy.json')
  const text = JSON.stringify({ rules: [] })
  await writeFile(file, text)
  const loaded: number[] = []
  const errors: string[] = []
  const first = new PolicyFileWatcher(file, 50, text, (policy) => loaded.push(policy.size), (err) => errors.push(err.message))
  const second = new PolicyFileWatcher(file, 50, text, () => {}, () => {})
  first.start()
  second.start()
  t.teardown(() => { first.close(); second.close() })
  second.close()
  await writeFile(file, JSON.stringify({ rules: [{ name: 'a', effect: 'deny', when: 'true' }] }))
  await eventually(() => loaded.length === 1)
  t.same(loaded, [1], 'the first still reloads')
  await rm(file)
  await eventually(() => errors.length > 0)
  first.look()
  t.same(errors, [`policy file ${file} is missing`], 'missing: said once')
  await writeFile(file, text)
  await eventually(() => loaded.length === 2)
  t.same(loaded, [1, 0], 'its return is loaded')
})
