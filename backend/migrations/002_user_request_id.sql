-- 002_user_request_id: an optional idempotency key for creating users. A client that sends `requestId` and retries
-- after an unknown outcome (a lost COMMIT answer, a timeout) finds the user its first request made, instead of a
-- 409 for its own email. Rows created without a key keep NULL, which the unique constraint does not compare.

ALTER TABLE users ADD COLUMN request_id uuid;
ALTER TABLE users ADD CONSTRAINT users_request_key UNIQUE (tenant_id, request_id);
