// A real nats-server (Debian's) for end-to-end tests: loopback only, a port it picks itself
// (-p -1, reported through --ports_file_dir), restartable on the same port to test reconnects.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { sleep } from './harness.mjs';

const running = new Set();

async function launch(dir, port) {
  const proc = spawn('nats-server', ['-a', '127.0.0.1', '-p', String(port), '--ports_file_dir', dir],
    { stdio: ['ignore', 'ignore', 'pipe'] });
  const log = [];
  proc.stderr.on('data', (b) => log.push(b.toString('utf8')));
  const exited = new Promise((resolve) => proc.on('close', resolve));
  const file = path.join(dir, `nats-server_${proc.pid}.ports`);
  const deadline = Date.now() + 20000;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null) break;
    try {
      const m = /127\.0\.0\.1:(\d+)/.exec(fs.readFileSync(file, 'utf8'));
      if (m) return { proc, exited, port: Number(m[1]), log };
    } catch {}
    await sleep(20);
  }
  proc.kill('SIGKILL');
  throw new Error(`nats-server did not start on port ${port}:\n${log.join('')}`);
}

/** Starts nats-server; resolves {url, port, kill(), restart(), stop()}. */
export async function startNats() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'presd-nats-'));
  let cur = await launch(dir, -1);
  const nats = {
    port: cur.port,
    url: `nats://127.0.0.1:${cur.port}`,
    // SIGKILL: the nodes see the connection drop as in a crash.
    async kill() {
      if (!cur) return;
      cur.proc.kill('SIGKILL');
      await cur.exited;
      cur = null;
    },
    async restart() {
      if (cur) await nats.kill();
      cur = await launch(dir, nats.port);
    },
    async stop() {
      await nats.kill();
      running.delete(nats);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  running.add(nats);
  return nats;
}

export async function stopAllNats() {
  await Promise.all([...running].map((n) => n.stop()));
}
