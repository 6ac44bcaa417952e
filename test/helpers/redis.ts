/**
 * Redis for tests: the machine's server on 127.0.0.1:6379. Under CI=true a missing Redis fails the
 * test; elsewhere the test is skipped with the reason shown. Every test gets its own key prefix and
 * its keys are deleted afterwards.
 */
import { randomBytes } from 'node:crypto'
import { Redis } from 'ioredis'

export const REDIS_URL = process.env.MCP_GATEWAY_TEST_REDIS ?? 'redis://127.0.0.1:6379'

let available: Promise<string | undefined> | undefined

/** Undefined when Redis answers; otherwise why not. */
export function redisMissing (): Promise<string | undefined> {
  available ??= (async () => {
    const probe = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 1000 })
    probe.on('error', () => {})
    try {
      await probe.connect()
      await probe.ping()
      return undefined
    } catch (err) {
      return `Redis not reachable at ${REDIS_URL} (${(err as Error).message})`
    } finally {
      probe.disconnect()
    }
  })()
  return available
}

/** Skip reason for `t.test(name, { skip })`; throws under CI=true, where Redis is required. */
export async function skipWithoutRedis (): Promise<string | false> {
  const missing = await redisMissing()
  if (missing === undefined) return false
  if (process.env.CI === 'true') throw new Error(`${missing}: Redis is required under CI=true`)
  return missing
}

/** Deletes every key under `prefix` (SCAN, never KEYS). */
export async function deleteKeys (client: Redis, prefix: string): Promise<void> {
  let cursor = '0'
  do {
    const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000)
    cursor = next
    if (keys.length > 0) await client.del(...keys)
  } while (cursor !== '0')
}

export async function redisClient (t: { teardown (fn: () => unknown): void }): Promise<{ client: Redis, prefix: string }> {
  const client = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 })
  const prefix = `mcp-gw-test:${randomBytes(6).toString('hex')}:`
  t.teardown(async () => {
    await deleteKeys(client, prefix)
    client.disconnect()
  })
  return { client, prefix }
}

/** Counts the scripts `client` sends from now on (its own commands, whatever else uses the server). */
export function countScripts (client: Redis): () => number {
  let sent = 0
  const send = client.sendCommand.bind(client)
  client.sendCommand = ((command: { name: string }, ...rest: unknown[]) => {
    if (command.name === 'evalsha' || command.name === 'eval') sent++
    return (send as (...args: unknown[]) => unknown)(command, ...rest)
  }) as typeof client.sendCommand
  return () => sent
}
