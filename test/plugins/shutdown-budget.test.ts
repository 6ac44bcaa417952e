/** The CLI's one shutdown budget, derived from the drains; a budget that cannot hold them is refused. */
import t from 'tap'
import { checkGatewayConfig, shutdownPlan } from '../../examples/gateway/config.ts'

const upstream = 'http://127.0.0.1:9/mcp'

t.test('derived from the drains: the forced exit comes after drain + ending streams + closing', async (t) => {
  t.same(shutdownPlan({ upstream }), { forcedExitMs: 15_000, killChildrenAtMs: 14_000, pluginTimeoutMs: 15_000 })
  t.same(shutdownPlan({ upstream, streaming: { drainTimeoutMs: 1000 } }), { forcedExitMs: 6000, killChildrenAtMs: 5000, pluginTimeoutMs: 10_000 })
  t.equal(shutdownPlan({ upstream, websocket: true }).forcedExitMs, 15_000, 'the WebSocket drain runs beside the streams\' one')
  t.equal(shutdownPlan({ upstream, streaming: { drainTimeoutMs: 1000 }, websocket: { drainTimeoutMs: 4000 } }).forcedExitMs, 9000, 'the longest drain counts')
  t.equal(shutdownPlan({ upstream, streaming: false }).forcedExitMs, 5000)
  t.equal(shutdownPlan({ upstream, shutdownTimeoutMs: 30_000 }).forcedExitMs, 30_000)
})

t.test('a shutdownTimeoutMs that cannot hold the drains is refused, with what to give', async (t) => {
  t.throws(() => checkGatewayConfig({ upstream, shutdownTimeoutMs: 10_000 }), /"shutdownTimeoutMs".*10000 ms cannot hold the drains.*give at least 13000/)
  t.throws(() => checkGatewayConfig({ upstream, streaming: { drainTimeoutMs: -1 } }), /streaming\.drainTimeoutMs/)
})
