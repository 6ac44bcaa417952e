/**
 * Timers of the request path keep no process alive and end with their owner: a Deadline's timer
 * is unref()ed and refreshed in place on progress (one timer per exchange, not one per progress
 * message); an interceptor's delay is unref()ed, and when the client leaves (the context's
 * signal) its timer is cleared at once and the interceptors after it never run.
 */
import t from 'tap'
import { Abort } from '../../lib/abort.ts'
import { Deadline } from '../../lib/deadline.ts'
import { InterceptorChain, type InterceptorContext } from '../../lib/interceptors/chain.ts'
import type { JsonRpcMessage } from '../../lib/jsonrpc.ts'

/**
 * The timers under test are unref()ed: while a test waits on one, something must keep the
 * process up (in a gateway, its listening socket does).
 */
function keepAlive (t: { teardown: (fn: () => void) => void }): void {
  const handle = setInterval(() => {}, 1000)
  t.teardown(() => clearInterval(handle))
}

/** Timers now keeping the event loop alive (unref()ed ones are not listed). */
const refTimers = (): number => process.getActiveResourcesInfo().filter((type) => type === 'Timeout').length

const silent = { error () {}, warn () {}, info () {}, debug () {}, trace () {}, fatal () {}, child () { return silent } } as unknown as InterceptorContext['log']
const call: JsonRpcMessage = { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'echo', arguments: {}, _meta: { progressToken: 'p' } } }
const progress = (value: number): JsonRpcMessage => ({ jsonrpc: '2.0', method: 'notifications/progress', params: { progressToken: 'p', progress: value } })

t.test('Deadline: one unref()ed timer, refreshed by progress', async (t) => {
  const before = refTimers()
  let expired = 0
  const deadline = new Deadline('up', 60_000, 3_600_000, [call], () => { expired++ })
  t.teardown(() => deadline.clear())
  t.equal(refTimers(), before, 'its timer keeps no process alive')
  const timer = (deadline as unknown as { timer: NodeJS.Timeout }).timer
  t.ok(timer, 'armed')
  for (let i = 0; i < 100; i++) deadline.see(progress(i))
  t.equal((deadline as unknown as { timer: NodeJS.Timeout }).timer, timer, 'the same timer, refreshed')
  t.equal(refTimers(), before)
  deadline.see({ jsonrpc: '2.0', id: 1, result: {} })
  t.equal((deadline as unknown as { timer: NodeJS.Timeout | undefined }).timer, undefined, 'answered: cleared')
  t.equal(expired, 0)
})

t.test('Deadline: progress never pushes past the ceiling', async (t) => {
  let expired = 0
  const deadline = new Deadline('up', 60_000, 50, [call], () => { expired++ })
  t.teardown(() => deadline.clear())
  keepAlive(t)
  await new Promise<void>((resolve) => { deadline.abort.once('abort', resolve); deadline.see(progress(1)) })
  t.equal(expired, 1, 'the 50 ms ceiling held against a 60 s idle timeout refreshed by progress')
  t.equal(deadline.expired, true)
})

t.test('Deadline: a restart near the ceiling waits only for the ceiling', async (t) => {
  let expired = 0
  const deadline = new Deadline('up', 100, 250, [call], () => { expired++ })
  t.teardown(() => deadline.clear())
  keepAlive(t)
  const started = Date.now()
  // Progress every 10 ms keeps the 100 ms idle timer from firing; the 250 ms ceiling ends it.
  const ticker = setInterval(() => deadline.see(progress(Date.now())), 10)
  t.teardown(() => clearInterval(ticker))
  await new Promise<void>((resolve) => deadline.abort.once('abort', resolve))
  clearInterval(ticker)
  t.equal(expired, 1)
  t.ok(Date.now() - started >= 245, `ended at the ceiling (${Date.now() - started} ms)`)
})

function chainContext (signal: Abort | undefined): Omit<InterceptorContext, 'kind'> {
  return { direction: 'client_to_upstream', session: undefined, upstream: 'default', config: undefined, log: silent, request: undefined, signal }
}

t.test('an interceptor delay: unref()ed, cleared when the client leaves, nothing runs after', async (t) => {
  let after = 0
  const chain = new InterceptorChain({}, [
    { name: 'slow', handler: () => ({ action: 'delay', ms: 30_000 }) },
    { name: 'after', handler: () => { after++ } }
  ])
  const before = refTimers()
  const signal = new Abort()
  const outcome = chain.run(call, chainContext(signal))
  t.ok(outcome instanceof Promise, 'delayed')
  t.equal(refTimers(), before, 'the delay keeps no process alive')
  signal.abort()
  t.same(await outcome, { kind: 'drop' }, 'the client left: the message goes nowhere')
  t.equal(after, 0, 'the next interceptor never ran')

  // An async handler's delay, and a signal that fired before the delay began.
  const late = new InterceptorChain({}, [
    { name: 'async', handler: async () => ({ action: 'delay', ms: 30_000 }) },
    { name: 'after', handler: () => { after++ } }
  ])
  const gone = new Abort()
  gone.abort()
  t.same(await late.run(call, chainContext(gone)), { kind: 'drop' })
  t.equal(after, 0)
  t.equal(gone.listenerCount('abort'), 0, 'no listener left on the signal')
  t.equal(signal.listenerCount('abort'), 0)
})

t.test('an interceptor delay without a signal still ends, and leaves no listener', async (t) => {
  keepAlive(t)
  const chain = new InterceptorChain({}, [{ name: 'short', handler: () => ({ action: 'delay', ms: 5 }) }])
  const signal = new Abort()
  t.same(await chain.run(call, chainContext(signal)), { kind: 'forward', message: call })
  t.equal(signal.listenerCount('abort'), 0, 'the abort listener is removed once the delay ends')
  t.same(await chain.run(call, chainContext(undefined)), { kind: 'forward', message: call })
})

t.test('an async handler\'s time limit is unref()ed', async (t) => {
  const before = refTimers()
  let release: () => void = () => {}
  const chain = new InterceptorChain({ timeoutMs: 30_000 }, [{ name: 'wait', handler: async () => { await new Promise<void>((resolve) => { release = resolve }) } }])
  const outcome = chain.run(call, chainContext(undefined))
  t.equal(refTimers(), before)
  release()
  t.same(await outcome, { kind: 'forward', message: call })
})
