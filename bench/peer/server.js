'use strict';
// The peer of `make bench` (bench/peer.py): express-pouchdb on PouchDB's LevelDB
// adapter, as a CouchDB-compatible sync server would be deployed for PouchDB tablets.
//
//   node server.js FOLDER PORT
//
// Every database lives under FOLDER (a fresh temporary folder per run); it listens on
// 127.0.0.1:PORT only. The mode is express-pouchdb's leanest, `minimumForPouchDB`:
// the routes PouchDB's replication needs (`_bulk_docs`, `_revs_diff`, `_changes`…) and
// response compression, without authentication, validation functions, the
// replicator or Fauxton. That is the fastest configuration of the peer; fieldsync's
// own server authenticates and validates every change.
//
// Durability: PouchDB writes each `_bulk_docs` as one LevelDB batch, without
// `sync: true`, so the answer comes once the batch is in LevelDB's log in the
// operating system's buffers, not on disk (it survives the process dying, not the
// machine). fieldsync answers only after its transaction is committed and fsynced.
const path = require('path');
const express = require('express');
const expressPouchDB = require('express-pouchdb');
const PouchDB = require('pouchdb-node');

const [folder, port] = process.argv.slice(2);
if (!folder || !/^[0-9]+$/.test(port || '')) {
  console.error('usage: node server.js FOLDER PORT');
  process.exit(2);
}

const Local = PouchDB.defaults({ prefix: path.join(path.resolve(folder), path.sep) });
const app = express();
app.use('/', expressPouchDB(Local, { mode: 'minimumForPouchDB' }));
const server = app.listen(Number(port), '127.0.0.1', () => {
  console.log(`express-pouchdb listening on 127.0.0.1:${port}, data in ${folder}`);
});
server.on('error', (error) => {
  console.error(error);
  process.exit(1);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
