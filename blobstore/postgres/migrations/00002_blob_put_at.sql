-- +goose Up
-- When each blob was last put (also by a Put of content already stored):
-- Purge removes a blob only if it was not put since a given time. Rows
-- that exist at the migration count as put now (now() is stable, so this
-- adds the column without rewriting the table): none is purged before a
-- whole retention period has passed, while replicas of the version before,
-- whose Puts of stored content do not touch the row, are replaced.
ALTER TABLE blobs ADD COLUMN put_at timestamptz NOT NULL DEFAULT now();

-- +goose Down
ALTER TABLE blobs DROP COLUMN put_at;
