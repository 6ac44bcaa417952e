/**
 * The admin console in a real browser (Debian's Chromium, headless, via playwright-core): sign in
 * with the keyboard, see an SDK client's session appear, approve its held call and see the call
 * complete, approve a changed tool definition from its diff and see it served, and a narrow
 * window that needs no sideways scrolling. Screenshots go to test-artifacts/.
 */
import t from 'tap'
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { gateway, textOf } from '../helpers/peers.ts'
import { rugPullUpstream, PULLED } from '../helpers/rug-pull.ts'
import { ARTIFACTS, browser, skipWithoutChromium } from '../helpers/browser.ts'

const ADMIN_KEY = 'console-admin-key-0123456789'

// What the functions run in the page use of it (the project's types have no DOM).
declare const document: { activeElement: unknown, documentElement: { scrollWidth: number } }
declare const window: { innerWidth: number }

t.test('sign in, see a session, approve a held call and a changed tool, on a narrow window too', { skip: await skipWithoutChromium() }, async (t) => {
  const up = await rugPullUpstream(t)
  const gw = await gateway(t, {
    upstream: { name: 'demo', url: up.url },
    pinning: { mode: 'hide' },
    policy: { rules: [{ name: 'sums-need-a-person', effect: 'approve', when: 'tool.name == "add"' }] },
    admin: { apiKeys: [{ name: 'ops', key: ADMIN_KEY }] },
    tapes: { dir: join(await mkdtemp(join(tmpdir(), 'console-tapes-')), 'tapes') }
  })
  const admin = gw.url.replace(/\/mcp$/, '/admin/')
  const page = await (await browser(t)).newPage({ viewport: { width: 1100, height: 900 } })
  const problems: string[] = []
  page.on('pageerror', (err) => problems.push(err.message))
  page.on('console', (message) => { if (message.type() === 'error') problems.push(message.text()) })
  await page.goto(admin)

  // Keyboard only: the key field has focus; Enter submits.
  await page.keyboard.type('not-the-key')
  await page.keyboard.press('Enter')
  await page.getByText('The admin key was not accepted.').waitFor()
  await page.locator('#key').fill('')
  await page.keyboard.type(ADMIN_KEY)
  await page.keyboard.press('Enter')
  await page.getByText('Signed in as ops').waitFor()
  t.notOk(await page.locator('#login').isVisible(), 'signed in: the key form is gone')

  const client = new Client({ name: 'console-test-client', version: '1.0.0' })
  await client.connect(new StreamableHTTPClientTransport(new URL(gw.url)))
  t.teardown(() => client.close())
  await page.locator('#sessions').getByText('console-test-client 1.0.0').waitFor()
  t.pass('the new session appears')

  const call = client.callTool({ name: 'add', arguments: { a: 2, b: 40 } })
  const approve = page.getByRole('button', { name: 'Approve add' })
  await approve.waitFor()
  await page.screenshot({ path: join(ARTIFACTS, 'console-approval.png'), fullPage: true })
  // Tab to the button and press it, as a keyboard user would (bounded: the page has few stops).
  for (let i = 0; i < 20 && !await approve.evaluate((node) => node === document.activeElement); i++) await page.keyboard.press('Tab')
  t.ok(await approve.evaluate((node) => node === document.activeElement), 'the Approve button is reachable by Tab')
  await page.keyboard.press('Enter')
  t.equal(textOf(await call), '42', 'the client\'s call completed once approved in the console')
  await page.getByText('No call waits for approval.').waitFor()

  await client.listTools()
  up.pull()
  const hidden = await client.listTools()
  t.notOk(hidden.tools.some((tool) => tool.name === 'weather'), 'the changed tool is hidden')
  // The pins section shows what waits when it is looked at: the feed said a pin changed.
  const approvePin = page.getByRole('button', { name: 'Approve the new definition of weather' })
  await approvePin.waitFor()
  await page.locator('#pins').getByText(PULLED, { exact: false }).first().waitFor()
  t.pass('the diff shows the new description')
  await page.screenshot({ path: join(ARTIFACTS, 'console-pin.png'), fullPage: true })
  await approvePin.click()
  await page.getByText('No definition waits for approval.').waitFor()
  const served = await client.listTools()
  t.equal(served.tools.find((tool) => tool.name === 'weather')?.description, PULLED, 'approved in the console: served')

  // A tape of the session, started and stopped from the console.
  await page.getByRole('button', { name: /^Tape session / }).click()
  const stopTape = page.getByRole('button', { name: /^Stop tape / })
  await stopTape.waitFor()
  await client.callTool({ name: 'echo', arguments: { text: 'on tape' } })
  await stopTape.click()
  await page.getByRole('button', { name: /^Download tape / }).waitFor()
  const tapes = await gw.app.mcpTapes.list()
  t.match(tapes, [{ recording: false, entries: 4 }], 'the tape: the upstream\'s initialize, then the call made while taping and its answer')

  await page.setViewportSize({ width: 360, height: 800 })
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth)
  t.ok(overflow <= 0, `a 360 px window needs no sideways scrolling (${overflow} px over)`)
  await page.screenshot({ path: join(ARTIFACTS, 'console-narrow.png'), fullPage: true })
  // The one wrong key's 401 is the browser's own console line, not a script error.
  t.same(problems.filter((line) => !line.includes('401')), [], 'no script errors on the page')
})
