/**
 * `fastify-mcp-gateway tape replay FILE [--port N] [--host H] [--speed X]`: serves a tape as an MCP
 * upstream until SIGINT/SIGTERM. `fastify-mcp-gateway tape diff A B`: what the two tapes' servers
 * answered differently. Exit code (diff): 0 the same, 2 different, 1 the command could not run.
 */
import { once } from 'node:events'
import { parseArgs } from 'node:util'
import { invalid } from '../../lib/options.ts'
import { diffTapes } from '../../lib/tapes/diff.ts'
import { TapeServer } from '../../lib/tapes/replay.ts'
import { readTape } from '../../lib/tapes/tape.ts'

export const TAPE_USAGE = `Usage: fastify-mcp-gateway tape replay FILE [--port N] [--host HOST] [--speed X]
       fastify-mcp-gateway tape diff A B

  replay  serve the tape as an MCP upstream (Streamable HTTP) at http://HOST:N/mcp
          --port N      default 3001 (0: any free port)
          --host HOST   default 127.0.0.1
          --speed X     recorded delays divided by X (0: none), default 1
  diff    what the two tapes' servers answered differently (exit 0 same, 2 different)
`

export async function tapeCommand (argv: string[], out: NodeJS.WritableStream, stop?: Promise<unknown>): Promise<number> {
  const { positionals, values } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { port: { type: 'string', default: '3001' }, host: { type: 'string', default: '127.0.0.1' }, speed: { type: 'string', default: '1' }, help: { type: 'boolean', default: false } },
    strict: true
  })
  const [verb, ...files] = positionals
  if (values.help || (verb === 'replay' && files.length !== 1) || (verb === 'diff' && files.length !== 2) || (verb !== 'replay' && verb !== 'diff')) {
    out.write(TAPE_USAGE)
    return values.help ? 0 : 1
  }
  if (verb === 'diff') {
    const differences = diffTapes(await readTape(files[0] as string), await readTape(files[1] as string))
    for (const d of differences) {
      out.write(d.kind === 'answer' ? `differs: ${d.request}\n  a: ${JSON.stringify(d.a)}\n  b: ${JSON.stringify(d.b)}\n` : `${d.kind === 'only-in-a' ? 'only in a' : 'only in b'}: ${d.request}\n`)
    }
    out.write(differences.length === 0 ? 'the tapes answer alike\n' : `${differences.length} difference(s)\n`)
    return differences.length === 0 ? 0 : 2
  }
  const port = Number(values.port)
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw invalid('--port', `not a port number: ${values.port}`)
  const speed = Number(values.speed)
  if (!Number.isFinite(speed) || speed < 0) throw invalid('--speed', 'must be a number, 0 or more')
  const tape = await readTape(files[0] as string)
  const server = new TapeServer(tape, { speed })
  const url = await server.listen(port, values.host)
  out.write(`tape ${files[0] as string} (${tape.entries.length} messages of upstream ${tape.header.upstream}) served at ${url}\n`)
  await (stop ?? Promise.race([once(process, 'SIGINT'), once(process, 'SIGTERM')]))
  await server.close()
  return 0
}
