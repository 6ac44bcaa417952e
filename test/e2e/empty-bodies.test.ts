/**
 * An empty body on GET and DELETE is no body, whatever the Content-Type says (the Python SDK
 * client sends `content-type: application/json` on every request, DELETE included); an empty POST
 * is still refused, with an error that says why (-32700 as before, an empty text is not JSON). Every method, with and without the header, with
 * no body and with an explicit `content-length: 0`.
 */
import { request as httpRequest } from 'node:http'
import t from 'tap'
import { gateway, upstream } from '../helpers/peers.ts'
import { openSession } from '../helpers/http.ts'

interface Answer { status: number, type: string | undefined, body: string }

/** One raw request (fetch decides content-length itself; here each case sets it or not). */
function send (url: string, method: string, headers: Record<string, string>): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method, headers }, (res) => {
      const type = res.headers['content-type']
      if (type?.startsWith('text/event-stream') === true) {
        // An open stream: its status and type are the answer.
        resolve({ status: res.statusCode ?? 0, type, body: '' })
        res.destroy()
        return
      }
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => { body += chunk })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type, body }))
    })
    req.on('error', reject)
    req.end()
  })
}

const CONTENT_TYPES = [undefined, 'application/json', 'application/json; charset=utf-8']
const LENGTHS = [undefined, '0']

t.test('empty bodies, by method, content type and length', async (t) => {
  const up = await upstream(t)
  const gw = await gateway(t, { upstream: up.url })
  for (const contentType of CONTENT_TYPES) {
    for (const length of LENGTHS) {
      const label = `content-type ${contentType ?? 'absent'}, content-length ${length ?? 'absent'}`
      const base: Record<string, string> = { accept: 'application/json, text/event-stream' }
      if (contentType !== undefined) base['content-type'] = contentType
      if (length !== undefined) base['content-length'] = length

      const sessionId = await openSession(gw.url)
      const session = { ...base, 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-11-25' }
      const get = await send(gw.url, 'GET', { ...session, accept: 'text/event-stream' })
      t.equal(get.status, 200, `GET, ${label}: the stream opens`)
      t.match(get.type, /^text\/event-stream/)

      const del = await send(gw.url, 'DELETE', session)
      t.equal(del.status, 200, `DELETE, ${label}: the session ends (${del.body})`)
      const after = await send(gw.url, 'DELETE', session)
      t.equal(after.status, 404, `DELETE, ${label}: it is gone`)

      const post = await send(gw.url, 'POST', base)
      if (contentType === undefined) {
        t.equal(post.status, 415, `POST, ${label}: not an MCP message`)
        t.equal((JSON.parse(post.body) as { error: { code: number } }).error.code, -32052)
      } else {
        t.equal(post.status, 400, `POST, ${label}: refused`)
        t.same(JSON.parse(post.body), { jsonrpc: '2.0', id: null, error: { code: -32700, message: 'Parse error: the POST body is empty' } })
      }
    }
  }
})
