/**
 * A real browser for tests: Debian's Chromium, headless, driven by playwright-core. Under CI=true
 * a missing Chromium fails the test (.ci/run installs it); elsewhere the test is skipped with the
 * reason shown. Screenshots go to test-artifacts/ (not committed).
 */
import { access, mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { chromium, type Browser } from 'playwright-core'

export const CHROMIUM = process.env.MCP_GATEWAY_TEST_CHROMIUM ?? '/usr/bin/chromium'
export const ARTIFACTS = join(import.meta.dirname, '..', '..', 'test-artifacts')

/** Skip reason for `t.test(name, { skip })`; throws under CI=true, where Chromium is required. */
export async function skipWithoutChromium (): Promise<string | false> {
  try {
    await access(CHROMIUM)
    return false
  } catch {
    const missing = `no Chromium at ${CHROMIUM} (apt-get install chromium)`
    if (process.env.CI === 'true') throw new Error(`${missing}: Chromium is required under CI=true`)
    return missing
  }
}

export async function browser (t: { teardown (fn: () => unknown): void }): Promise<Browser> {
  await mkdir(ARTIFACTS, { recursive: true })
  // The flags keep Chromium off the network it cannot reach here (its background fetches would be refused).
  const launched = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    timeout: 30_000,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage']
  })
  t.teardown(() => launched.close())
  return launched
}
