-- +goose Up
CREATE TABLE blobs (
    key          text PRIMARY KEY CHECK (key ~ '^[0-9a-f]{64}$'),
    content_type text NOT NULL,
    size         bigint NOT NULL CHECK (size >= 0),
    data         bytea NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);
-- Images are already compressed: store out of line without trying to
-- compress again, which also makes substring reads cheap.
ALTER TABLE blobs ALTER COLUMN data SET STORAGE EXTERNAL;

-- +goose Down
DROP TABLE blobs;
