-- 001_init: tenants, their users with an audit log, and wallets with a transfer ledger.
-- Applied by scripts/lib/migrate.ts in one transaction; an applied migration is never edited (its checksum is
-- recorded), a change is a new numbered file. Constraint names are stable because handlers map them to 4xx answers.

CREATE TABLE tenants (
  id         uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
  name       text        NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE users (
  id         uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id  uuid        NOT NULL,
  email      text        NOT NULL,
  name       text        NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  created_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT users_tenant_fk FOREIGN KEY (tenant_id) REFERENCES tenants (id),
  CONSTRAINT users_tenant_email_key UNIQUE (tenant_id, email),
  -- The API lower-cases emails; the check keeps a direct INSERT from creating a case-variant duplicate.
  CONSTRAINT users_email_lower_check CHECK (email = lower(email))
);
CREATE INDEX users_tenant_created_idx ON users (tenant_id, created_at, id);

CREATE TABLE audit_log (
  id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  tenant_id   uuid        NOT NULL REFERENCES tenants (id),
  action      text        NOT NULL,
  entity_type text        NOT NULL,
  entity_id   uuid        NOT NULL,
  -- The Lambda request id, to join an audit row with the function's logs.
  request_id  text,
  created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_log_tenant_created_idx ON audit_log (tenant_id, created_at);

CREATE TABLE wallets (
  id            uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id     uuid        NOT NULL REFERENCES tenants (id),
  name          text        NOT NULL,
  balance_cents bigint      NOT NULL DEFAULT 0,
  created_at    timestamptz NOT NULL DEFAULT now(),
  -- The last line of defence: no code path may overdraw a wallet.
  CONSTRAINT wallets_balance_nonnegative CHECK (balance_cents >= 0),
  CONSTRAINT wallets_tenant_id_key UNIQUE (tenant_id, id)
);

-- The ledger: one row per transfer, written in the same transaction as the two balance updates.
CREATE TABLE transfers (
  id             uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id      uuid        NOT NULL,
  -- The client's idempotency key: a retried request finds its transfer here instead of moving money twice.
  request_id     uuid        NOT NULL,
  from_wallet_id uuid        NOT NULL,
  to_wallet_id   uuid        NOT NULL,
  amount_cents   bigint      NOT NULL CHECK (amount_cents > 0),
  created_at     timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT transfers_request_key UNIQUE (tenant_id, request_id),
  CONSTRAINT transfers_distinct_wallets CHECK (from_wallet_id <> to_wallet_id),
  CONSTRAINT transfers_from_fk FOREIGN KEY (tenant_id, from_wallet_id) REFERENCES wallets (tenant_id, id),
  CONSTRAINT transfers_to_fk FOREIGN KEY (tenant_id, to_wallet_id) REFERENCES wallets (tenant_id, id)
);
CREATE INDEX transfers_from_idx ON transfers (from_wallet_id, created_at);
CREATE INDEX transfers_to_idx ON transfers (to_wallet_id, created_at);
