/**
 * The Redis token store's listing by group (every principal holding a token for an upstream):
 * read from its own index, never a walk of the shared keyspace; lapsed and deleted keys left out.
 */
import t from 'tap'
import { RedisTokenStore } from '../../lib/redis/token-store.ts'
import { redisClient, skipWithoutRedis } from '../helpers/redis.ts'

t.test('an upstream\'s principals: listed from the index, without SCAN; deleted, taken and lapsed keys gone', { skip: await skipWithoutRedis() }, async (t) => {
  const { client, prefix } = await redisClient(t)
  const store = new RedisTokenStore(client, prefix)
  let scans = 0
  const send = client.sendCommand.bind(client)
  client.sendCommand = ((command: { name: string }, ...rest: unknown[]) => {
    if (command.name === 'scan') scans++
    return (send as (...args: unknown[]) => unknown)(command, ...rest)
  }) as typeof client.sendCommand
  for (const name of ['alice', 'bob', 'carol']) await store.set(`t:files:${name}`, 'sealed', 60_000)
  await store.set('t:mail:dave', 'sealed', 60_000)
  await store.set('f:some-state', 'flow', 60_000)
  t.same((await store.keys('t:files:', 10)).sort(), ['t:files:alice', 't:files:bob', 't:files:carol'])
  t.same(await store.keys('t:files:', 2).then((keys) => keys.length), 2, 'at most the limit')
  t.equal(await store.delete('t:files:bob'), true)
  t.equal(await store.take('t:files:carol'), 'sealed')
  t.same(await store.keys('t:files:', 10), ['t:files:alice'], 'deleted and taken keys are not listed')
  await store.set('t:files:erin', 'sealed', 1)
  const until = Date.now() + 2000
  while (await client.exists(`${prefix}tokens:t:files:erin`) === 1 && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 5))
  t.same(await store.keys('t:files:', 10), ['t:files:alice'], 'a lapsed key is not listed')
  t.equal(scans, 0, 'no walk of the keyspace')
  t.same(await store.keys('f:', 10), ['f:some-state'], 'a prefix that is no group is still found (by SCAN)')
  t.equal(scans, 1)
})
