// When a transaction callback throws, withTransaction rolls back and rethrows the callback's own error. If the
// ROLLBACK itself fails, the caller still gets that same error (with the rollback failure as its `cause`), and the
// connection, whose state is now unknown, is destroyed rather than handed to the next caller. The TCP proxy (TLS off)
// cuts the connection when the ROLLBACK goes out.
import crypto from 'node:crypto';
import { startTcpProxy, type TcpProxy } from '../../../../scripts/lib/tcp-proxy';
import { testServer } from '../support/postgres';
import { createFaultDatabase, databaseTracker, rejectionOf, type FaultDatabase } from './support';

let fault: FaultDatabase;
let proxy: TcpProxy;
const databases = databaseTracker();

beforeAll(async () => {
  fault = await createFaultDatabase('rollback_fails');
  await fault.asOwner('CREATE TABLE drafts (id uuid PRIMARY KEY)');
  proxy = await startTcpProxy({ host: testServer().host, port: testServer().port });
});

afterEach(() => databases.closeAll());

afterAll(async () => {
  await proxy?.close();
  await fault?.drop();
});

describe('withTransaction when ROLLBACK fails', () => {
  it("rethrows the callback's own error with the rollback failure as cause, and destroys the connection", async () => {
    const db = databases.open(fault.proxiedOptions(proxy, { poolMax: 1 }));
    const id = crypto.randomUUID();
    let rollbacks = 0;
    proxy.onClientData((chunk) => {
      if (!chunk.includes('ROLLBACK')) return 'forward';
      rollbacks += 1;
      return 'drop-connection';
    });
    const thrown = new Error('the draft failed validation');
    let pidInside = 0;

    const caught = await rejectionOf(db.withTransaction(async (client) => {
      pidInside = (await client.query('SELECT pg_backend_pid() AS pid')).rows[0].pid;
      await client.query('INSERT INTO drafts (id) VALUES ($1)', [id]);
      throw thrown;
    }));
    proxy.onClientData(null);
    const pidAfter = (await db.query('SELECT pg_backend_pid() AS pid')).rows[0].pid;

    expect(caught).toBe(thrown);
    expect(thrown.cause).toMatchObject({ message: expect.stringMatching(/ECONNRESET|Connection terminated/) }); // what failed the ROLLBACK
    expect(rollbacks).toBe(1);
    expect(pidAfter).not.toBe(pidInside);
    expect((await fault.admin('SELECT 1 FROM drafts WHERE id = $1', [id])).rowCount).toBe(0);
  });
});
