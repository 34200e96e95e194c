-- Demo data for the local run: one tenant and two wallets with fixed ids, so README curl commands can name them.
-- Applied by scripts/lib/seed.ts after the migrations, never by the migration runner; safe to apply again (the rows
-- are only inserted when missing, and an existing wallet keeps its balance).
INSERT INTO tenants (id, name)
VALUES ('00000000-0000-4000-8000-000000000001', 'Demo tenant')
ON CONFLICT (id) DO NOTHING;

INSERT INTO wallets (id, tenant_id, name, balance_cents)
VALUES ('00000000-0000-4000-8000-0000000000a1', '00000000-0000-4000-8000-000000000001', 'Alice', 100000),
       ('00000000-0000-4000-8000-0000000000b2', '00000000-0000-4000-8000-000000000001', 'Bob', 50000)
ON CONFLICT (id) DO NOTHING;
