-- +goose Up
-- The log. With a single writer, global positions are handed out and
-- committed in order, so readers order by global_position alone; see the
-- package documentation. AUTOINCREMENT keeps a position from ever being
-- handed out twice, even if the newest event were deleted.
-- Times are unix nanoseconds (UTC) from the Go clock of the writer.
CREATE TABLE events (
    global_position INTEGER PRIMARY KEY AUTOINCREMENT,
    stream_id       TEXT    NOT NULL,
    stream_version  INTEGER NOT NULL,
    event_id        BLOB    NOT NULL CONSTRAINT events_event_id_key UNIQUE,
    event_type      TEXT    NOT NULL,
    schema_version  INTEGER NOT NULL,
    data            TEXT    NOT NULL,
    metadata        TEXT    NOT NULL,
    recorded_at     INTEGER NOT NULL,
    CONSTRAINT events_stream_version_key UNIQUE (stream_id, stream_version)
) STRICT;

-- One row per stream: its version, the expected-version check of an append.
CREATE TABLE streams (
    stream_id TEXT    NOT NULL PRIMARY KEY,
    version   INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE TABLE checkpoints (
    subscription    TEXT    NOT NULL,
    partition       INTEGER NOT NULL,
    transaction_id  INTEGER NOT NULL,
    global_position INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    PRIMARY KEY (subscription, partition)
) STRICT, WITHOUT ROWID;

CREATE TABLE leases (
    subscription TEXT    NOT NULL,
    partition    INTEGER NOT NULL,
    holder       TEXT    NOT NULL,
    epoch        INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    PRIMARY KEY (subscription, partition)
) STRICT, WITHOUT ROWID;

-- +goose Down
DROP TABLE leases;
DROP TABLE checkpoints;
DROP TABLE streams;
DROP TABLE events;
