// A throw-away PostgreSQL server for end-to-end tests (`presd serve --store postgres://...`).
//
//   const pg = await startPostgres();          // initdb + pg_ctl start on 127.0.0.1:<free port>
//   const url = await pg.createDatabase('x');  // or pg.url: the default `presd` database
//   await pg.stop();                           // pg_ctl stop, then remove the temp dir
//
// The server listens on loopback only with its unix socket inside its temp dir, trusts every
// local connection (user `presd`, no password) and runs with fsync off. initdb refuses to run as
// root, so as root the server runs as `nobody`, which owns the temp dir. The binaries come from
// PRESD_PG_BINDIR or the newest /usr/lib/postgresql/<version>/bin (Debian's layout).
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export function postgresBinDir() {
  if (process.env.PRESD_PG_BINDIR) return process.env.PRESD_PG_BINDIR;
  const root = '/usr/lib/postgresql';
  let versions = [];
  try { versions = fs.readdirSync(root).filter((v) => /^\d+$/.test(v) && fs.existsSync(path.join(root, v, 'bin', 'initdb'))); } catch {}
  if (!versions.length) throw new Error(`no PostgreSQL server in ${root} (scripts/install-deps installs it)`);
  versions.sort((a, b) => Number(b) - Number(a));
  return path.join(root, versions[0], 'bin');
}

function nobodyIds() {
  const line = fs.readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.startsWith('nobody:'));
  if (!line) throw new Error('no user `nobody` to run PostgreSQL as');
  const [, , uid, gid] = line.split(':');
  return { uid: Number(uid), gid: Number(gid) };
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/**
 * Starts a private PostgreSQL server. Resolves {url, port, dir, urlFor(db), createDatabase(name),
 * sql(statement, db), pause(), resume(), stop(), logs()}: url is the `presd` database's
 * postgresql:// URL; pause()/resume() stop and restart the server on the same port (an outage);
 * stop() stops it for good and removes its files.
 */
export async function startPostgres({ user = 'presd' } = {}) {
  const bin = postgresBinDir();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'presd-pg-'));
  const data = path.join(dir, 'data');
  const logFile = path.join(dir, 'server.log');
  const asUser = process.getuid && process.getuid() === 0 ? nobodyIds() : null;
  if (asUser) fs.chownSync(dir, asUser.uid, asUser.gid);

  const run = (program, args, { timeout = 120000 } = {}) => new Promise((resolve, reject) => {
    const opts = { cwd: dir, timeout, encoding: 'utf8', env: { ...process.env, LC_ALL: 'C.UTF-8' } };
    if (asUser) Object.assign(opts, asUser);
    execFile(path.join(bin, program), args, opts, (e, stdout, stderr) => {
      if (e) return reject(new Error(`${program} ${args.join(' ')} failed: ${stderr || e.message}\n${readLog()}`));
      resolve(stdout);
    });
  });
  const readLog = () => { try { return fs.readFileSync(logFile, 'utf8'); } catch { return ''; } };

  await run('initdb', ['-D', data, '-U', user, '--auth=trust', '-E', 'UTF8', '--locale=C.UTF-8', '--no-sync']);

  let port = 0;
  let running = false;
  const start = async () => {
    const opts = `-c listen_addresses=127.0.0.1 -p ${port} -k ${dir} -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=100`;
    await run('pg_ctl', ['-D', data, '-l', logFile, '-w', '-t', '60', '-o', opts, 'start']);
    running = true;
  };
  for (let attempt = 0; ; attempt++) {
    port = await freePort();
    try { await start(); break; } catch (e) { if (attempt === 2) { fs.rmSync(dir, { recursive: true, force: true }); throw e; } }
  }

  const urlFor = (db) => `postgresql://${user}@127.0.0.1:${port}/${db}`;
  const psql = (statement, db = 'postgres') =>
    run('psql', ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-At', '-d', urlFor(db), '-c', statement]).then((s) => s.trim());

  await psql(`CREATE DATABASE ${user}`);
  let databases = 0;
  const pg = {
    port,
    dir,
    url: urlFor(user),
    urlFor,
    sql: psql,
    logs: readLog,
    async createDatabase(name = `presd_e2e_${++databases}`) {
      await psql(`CREATE DATABASE ${name}`);
      return urlFor(name);
    },
    async pause() {
      if (!running) return;
      await run('pg_ctl', ['-D', data, '-m', 'fast', '-w', '-t', '60', 'stop']);
      running = false;
    },
    async resume() {
      if (!running) await start();
    },
    async stop() {
      if (running) await run('pg_ctl', ['-D', data, '-m', 'fast', '-w', '-t', '60', 'stop']).catch(() =>
        run('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']).catch(() => {}));
      running = false;
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  return pg;
}
