#!/usr/bin/env node
// dynalite for the local stack and the tests: started as its cli.js starts it, with the
// same flags, but without its one known way to die.
//
// dynalite 4.0.0 (the newest release) registers, for every incoming request,
//   req.on('error', function (err) { throw err })
// so a client that drops its connection in the middle of a request (ECONNRESET,
// "aborted"; e.g. a service killed during a call) throws out of an event handler and
// ends the whole process. No option turns this off; upstream tracks it as
// architect/dynalite#183 (open). Node emits 'error' on a request only when it has a
// listener, so this file swaps dynalite's throwing listener for one that logs and
// closes that one connection; every other request goes on.
'use strict'

const path = require('path')
const dynalite = require(path.join(__dirname, '..', 'node_modules', 'dynalite'))

const NUMBERS = new Set(['port', 'createTableMs', 'deleteTableMs', 'updateTableMs', 'maxItemSizeKb'])
const SWITCHES = new Set(['ssl', 'verbose', 'debug'])

function parse (args) {
  const options = {}
  for (let i = 0; i < args.length; i++) {
    const name = args[i].replace(/^--/, '')
    if (SWITCHES.has(name)) options[name] = true
    else options[name] = NUMBERS.has(name) ? Number(args[++i]) : args[++i]
  }
  return options
}

function onRequestError (error) {
  console.error('[dynalite guard] request failed, connection closed: %s', error.code || error.message)
  this.destroy()
}

const options = parse(process.argv.slice(2))
const server = dynalite(options)
// Runs right after dynalite's own handler, within the same emit, before any data event.
server.on('request', function (req) {
  req.removeAllListeners('error')
  req.on('error', onRequestError)
})
server.listen(options.port || 4567, options.host || undefined, function () {
  const address = server.address()
  console.log('dynalite (guarded) listening at %s:%s', options.host || 'localhost', address.port)
})
