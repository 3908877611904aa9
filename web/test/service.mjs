// Runs the real service for the browser tests: builds the binary, makes a
// fresh PostgreSQL schema in TEST_DATABASE_URL, starts the service on a free
// port and tears it all down afterwards.
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** repoRoot is the root of the Go module. */
export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

function psql(dbURL, sql) {
  execFileSync('psql', [dbURL, '-v', 'ON_ERROR_STOP=1', '-qc', sql], {
    stdio: ['ignore', 'ignore', 'inherit'],
    env: { ...process.env, PGOPTIONS: '--client-min-messages=warning' },
  });
}

function withSearchPath(dbURL, schema) {
  const u = new URL(dbURL);
  u.searchParams.set('search_path', schema);
  return u.toString();
}

// waitForListening resolves to the base URL the service prints when it listens.
function waitForListening(proc, logs) {
  return new Promise((resolvePromise, reject) => {
    const timer = setTimeout(() => reject(new Error(`the service did not start:\n${logs.join('')}`)), 60000);
    let out = '';
    proc.stdout.on('data', (chunk) => {
      out += chunk;
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) { clearTimeout(timer); resolvePromise(m[1]); }
    });
    proc.on('exit', (code) => { clearTimeout(timer); reject(new Error(`the service exited with ${code}:\n${logs.join('')}`)); });
  });
}

async function waitReady(base) {
  const deadline = Date.now() + 60000;
  for (;;) {
    const res = await fetch(`${base}/readyz`).catch(() => null);
    if (res?.ok) return;
    if (Date.now() > deadline) throw new Error('the service never became ready');
    await new Promise((r) => setTimeout(r, 200));
  }
}

/**
 * startService starts the service on a fresh schema of dbURL and returns
 * {base, logs, stop()}.
 */
export async function startService(dbURL) {
  const dir = mkdtempSync(join(tmpdir(), 'imageservice-web-'));
  const bin = join(dir, 'imageservice');
  execFileSync('go', ['build', '-o', bin, './cmd/imageservice'], { cwd: repoRoot, stdio: 'inherit' });
  const schema = `web_test_${randomBytes(6).toString('hex')}`;
  psql(dbURL, `CREATE SCHEMA ${schema}`);
  const logs = [];
  const proc = spawn(bin, [], {
    cwd: dir,
    stdio: ['ignore', 'pipe', 'pipe'],
    // Only what the service needs: no brokers or cloud from the caller's environment.
    env: {
      PATH: process.env.PATH, HOME: process.env.HOME || dir, TMPDIR: tmpdir(),
      DATABASE_URL: withSearchPath(dbURL, schema), HTTP_ADDR: '127.0.0.1:0', AUTO_DITHER: 'true',
    },
  });
  proc.stderr.on('data', (chunk) => logs.push(String(chunk)));
  const stop = async () => {
    if (proc.exitCode === null) {
      const exited = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 10000))]);
      if (proc.exitCode === null) proc.kill('SIGKILL');
    }
    psql(dbURL, `DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const base = await waitForListening(proc, logs);
    await waitReady(base);
    return { base, logs, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
