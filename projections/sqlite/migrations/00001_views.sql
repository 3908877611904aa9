-- +goose Up
-- The read models, in the event store's database file. Both are
-- projections of the event log; Rebuild empties and refills them in one
-- write transaction.
-- Times are unix microseconds in UTC (the precision of the read models
-- and of cursors), so they sort as numbers; ids are canonical lowercase
-- UUID text, which sorts like the UUIDs' bytes; JSON is text.

-- One row per image. state is the images.Image that images.Evolve folded,
-- as JSON: the projector loads it, folds a batch's events in and writes
-- the row back, so the projection and a replay share one code path.
CREATE TABLE image_view (
    id           TEXT    NOT NULL PRIMARY KEY,
    filename     TEXT    NOT NULL,
    content_type TEXT    NOT NULL,
    byte_size    INTEGER NOT NULL,
    width        INTEGER NOT NULL,
    height       INTEGER NOT NULL,
    sha256       TEXT    NOT NULL,
    owner        TEXT    NOT NULL,
    status       TEXT    NOT NULL,
    url          TEXT    NOT NULL,
    version      INTEGER NOT NULL,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    deleted_at   INTEGER,
    dither_count INTEGER NOT NULL,
    state        TEXT    NOT NULL
) STRICT;
-- Images: newest first, deleted images left out, keyset on (created_at, id).
CREATE INDEX image_view_created_at_id_idx ON image_view (created_at, id) WHERE status <> 'DELETED';

-- One row per dither; seq is its place in the image's request order.
CREATE TABLE dither_view (
    id           TEXT    NOT NULL PRIMARY KEY,
    image_id     TEXT    NOT NULL,
    seq          INTEGER NOT NULL,
    options      TEXT    NOT NULL,
    status       TEXT    NOT NULL,
    result_key   TEXT    NOT NULL,
    byte_size    INTEGER NOT NULL,
    width        INTEGER NOT NULL,
    height       INTEGER NOT NULL,
    colours      INTEGER NOT NULL,
    error        TEXT    NOT NULL,
    duration_ms  INTEGER NOT NULL,
    requested_at INTEGER NOT NULL,
    completed_at INTEGER,
    url          TEXT    NOT NULL,
    CONSTRAINT dither_view_image_id_seq_key UNIQUE (image_id, seq)
) STRICT;

-- +goose Down
DROP TABLE dither_view;
DROP TABLE image_view;
