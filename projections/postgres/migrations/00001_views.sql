-- +goose Up
-- The read models. Both are projections of the event log, rebuilt by
-- Rebuild into image_view_next and dither_view_next (copies made with
-- LIKE ... INCLUDING ALL) and swapped in by renames. Keep index names in
-- PostgreSQL's default form <table>_<columns>_<suffix>: the swap renames
-- the copies' indexes back by replacing the table name prefix.

-- One row per image. state is the images.Image that images.Evolve folded,
-- as JSON: the projector loads it, folds a batch's events in and writes the
-- row back, so the projection and a replay share one code path.
CREATE TABLE image_view (
    id           uuid        NOT NULL,
    filename     text        NOT NULL,
    content_type text        NOT NULL,
    byte_size    bigint      NOT NULL,
    width        integer     NOT NULL,
    height       integer     NOT NULL,
    sha256       text        NOT NULL,
    owner        text        NOT NULL,
    status       text        NOT NULL,
    url          text        NOT NULL,
    version      bigint      NOT NULL,
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL,
    deleted_at   timestamptz,
    dither_count integer     NOT NULL,
    state        jsonb       NOT NULL,
    CONSTRAINT image_view_pkey PRIMARY KEY (id)
);
-- Images: newest first, deleted images left out, keyset on (created_at, id).
CREATE INDEX image_view_created_at_id_idx ON image_view (created_at, id) WHERE status <> 'DELETED';

-- One row per dither; seq is its place in the image's request order.
CREATE TABLE dither_view (
    id           uuid        NOT NULL,
    image_id     uuid        NOT NULL,
    seq          integer     NOT NULL,
    options      jsonb       NOT NULL,
    status       text        NOT NULL,
    result_key   text        NOT NULL,
    byte_size    bigint      NOT NULL,
    width        integer     NOT NULL,
    height       integer     NOT NULL,
    colours      integer     NOT NULL,
    error        text        NOT NULL,
    duration_ms  bigint      NOT NULL,
    requested_at timestamptz NOT NULL,
    completed_at timestamptz,
    url          text        NOT NULL,
    CONSTRAINT dither_view_pkey PRIMARY KEY (id),
    CONSTRAINT dither_view_image_id_seq_key UNIQUE (image_id, seq)
);

-- +goose Down
DROP TABLE dither_view;
DROP TABLE image_view;
