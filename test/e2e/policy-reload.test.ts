/**
 * A policy file, reloaded while calls flow: no call fails for the change, the new rule holds
 * within a second, a bad file leaves the policy in force (and says so in the log and metrics),
 * and the next good one is taken.
 */
import t from 'tap'
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { client, eventually, gateway, textOf, upstream } from '../helpers/peers.ts'

const policy = (rules: unknown[]): string => JSON.stringify({ rules })
const DENY_ADD = { name: 'no-add', effect: 'deny', when: 'tool.name == "add"', message: 'no sums today' }

/** Written as editors and deploy tools do: a new file renamed over the old one. */
async function replace (file: string, text: string): Promise<void> {
  await writeFile(`${file}.tmp`, text)
  await rename(`${file}.tmp`, file)
}

async function metric (url: string, name: string): Promise<string> {
  const text = await (await fetch(new URL('/metrics', url))).text()
  return text.split('\n').filter((line) => line.startsWith(name)).join('\n')
}

t.test('hot reload under traffic, then a bad file, then a good one', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'policy-reload-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const file = join(dir, 'policy.json')
  await writeFile(file, policy([]))
  const up = await upstream(t)
  const logged: string[] = []
  const gw = await gateway(t, { upstream: up.url, policy: { file, pollMs: 200 } }, (app) => {
    app.log.error = ((obj: { err?: Error }, msg: string) => { logged.push(`${msg}: ${obj.err?.message ?? ''}`) }) as typeof app.log.error
  })
  const { client: c } = await client(t, gw.url)
  t.match(await metric(gw.url, 'mcp_gateway_policy_version'), /mcp_gateway_policy_version 1/)

  // Calls to echo and add flow while the file changes; echo must never fail, add must turn denied.
  let stop = false
  let switchedAt = 0
  let deniedAt = 0
  const failures: string[] = []
  const traffic = (async () => {
    for (let i = 0; i < 5000 && !stop; i++) {
      try {
        t.equal(textOf(await c.callTool({ name: 'echo', arguments: { text: `m${i}` } })), `m${i}`)
      } catch (err) {
        failures.push((err as Error).message)
      }
      const sum = await c.callTool({ name: 'add', arguments: { a: 1, b: 1 } }).then(() => 'ok', (err: { code?: number, data?: { rule?: string } }) => err.code === -32055 && err.data?.rule === 'no-add' ? 'denied' : `failed ${String(err.code)}`)
      if (sum === 'denied' && deniedAt === 0) deniedAt = performance.now()
      else if (sum.startsWith('failed')) failures.push(sum)
      if (deniedAt > 0) stop = true
    }
  })()
  await eventually(() => up.record.requests.length > 10)
  await replace(file, policy([DENY_ADD]))
  switchedAt = performance.now()
  await traffic
  t.same(failures, [], 'no call failed while the policy changed')
  t.ok(deniedAt > 0, 'the new rule took effect')
  t.ok(deniedAt - switchedAt < 1000, `within a second of the write (${(deniedAt - switchedAt).toFixed(0)} ms)`)
  t.match(await metric(gw.url, 'mcp_gateway_policy_version'), /mcp_gateway_policy_version 2/)

  await replace(file, '{"rules": [{"name": "broken", "effect": "deny", "when": "tool.name =="}]}')
  await eventually(() => logged.some((line) => /policy file not loaded/.test(line)))
  t.match(logged.join('\n'), /policy rule "broken"/, 'the log names the rule that did not compile')
  t.match(await metric(gw.url, 'mcp_gateway_policy_reload_failed'), /mcp_gateway_policy_reload_failed 1/)
  t.match(await metric(gw.url, 'mcp_gateway_policy_version'), /mcp_gateway_policy_version 2/, 'the version in force is unchanged')
  t.match(await c.callTool({ name: 'add', arguments: { a: 1, b: 1 } }).catch((err: { data?: unknown }) => err), { data: { rule: 'no-add' } }, 'the old policy still holds')

  await replace(file, policy([]))
  await eventually(() => gw.app.mcpPolicy.version === 3)
  const answered = textOf(await c.callTool({ name: 'add', arguments: { a: 1, b: 1 } }))
  t.equal(answered, '2', 'a good file is taken after a bad one')
  t.match(await metric(gw.url, 'mcp_gateway_policy_reload_failed'), /mcp_gateway_policy_reload_failed 0/)
  t.match(await metric(gw.url, 'mcp_gateway_policy_decisions_total'), /rule="no-add",effect="deny"/, 'decisions are counted by rule and effect')
})
