/** Entry point of `upstreamProcess`: the demo upstream, its URL on stdout. */
import { startDemoUpstream } from '../../examples/demo-upstream/server.ts'

const options = JSON.parse(process.argv[2] ?? '{}') as { jsonResponse?: boolean }
const up = await startDemoUpstream(options)
process.stdout.write(`listening ${up.url}\n`)
