-- +goose Up
-- The log. Readers order by (transaction_id, global_position) and read only
-- transactions below the visibility horizon; see the package documentation.
CREATE TABLE events (
    global_position bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    transaction_id  xid8        NOT NULL DEFAULT pg_current_xact_id(),
    stream_id       text        NOT NULL,
    stream_version  bigint      NOT NULL,
    event_id        uuid        NOT NULL,
    event_type      text        NOT NULL,
    schema_version  integer     NOT NULL,
    data            jsonb       NOT NULL,
    metadata        jsonb       NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT events_event_id_key UNIQUE (event_id),
    CONSTRAINT events_stream_version_key UNIQUE (stream_id, stream_version)
);
CREATE INDEX events_transaction_position ON events (transaction_id, global_position);

-- One row per stream: its version and the last transaction that appended
-- to it. An append requires last_txid <= its own transaction id, so a
-- transaction that got its id earlier can never put the next version of a
-- stream before the previous one in the global order.
CREATE TABLE streams (
    stream_id text   PRIMARY KEY,
    version   bigint NOT NULL,
    last_txid xid8   NOT NULL
);

CREATE TABLE checkpoints (
    subscription    text        NOT NULL,
    partition       integer     NOT NULL,
    transaction_id  bigint      NOT NULL,
    global_position bigint      NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (subscription, partition)
);

CREATE TABLE leases (
    subscription text        NOT NULL,
    partition    integer     NOT NULL,
    holder       text        NOT NULL,
    epoch        bigint      NOT NULL,
    expires_at   timestamptz NOT NULL,
    PRIMARY KEY (subscription, partition)
);

-- +goose StatementBegin
-- eventstore_append appends events to a stream in one round trip. A retry
-- of an earlier append (the same ids with the same content) returns the
-- recorded events with duplicate = true and writes nothing.
-- Errors: ES001 wrong expected version (DETAIL: the actual version),
-- ES002 an event id recorded with other content, ES003 the stream was
-- appended to by a later transaction (retry in a new transaction).
CREATE FUNCTION eventstore_append(
    p_stream text, p_expected bigint, p_ids uuid[], p_types text[],
    p_schema_versions integer[], p_data jsonb[], p_metadata jsonb[])
RETURNS TABLE (stream_version bigint, global_position bigint, transaction_id bigint, duplicate boolean)
LANGUAGE plpgsql AS $$
DECLARE
    n         integer := cardinality(p_ids);
    v_txid    xid8    := pg_current_xact_id();
    v_version bigint;
    v_actual  bigint;
    v_last    xid8;
BEGIN
    IF EXISTS (SELECT 1 FROM events e WHERE e.event_id = ANY (p_ids)) THEN
        IF (SELECT count(*) = n AND count(DISTINCT e.stream_version - x.ord) = 1
                   AND bool_and(e.stream_id = p_stream AND e.event_type = x.typ
                                AND e.schema_version = x.sv AND e.data = x.data
                                AND e.metadata = x.meta)
              FROM unnest(p_ids, p_types, p_schema_versions, p_data, p_metadata)
                   WITH ORDINALITY AS x(id, typ, sv, data, meta, ord)
              JOIN events e ON e.event_id = x.id) THEN
            RETURN QUERY
                SELECT e.stream_version, e.global_position, e.transaction_id::text::bigint, true
                  FROM events e WHERE e.event_id = ANY (p_ids) ORDER BY e.stream_version;
            RETURN;
        END IF;
        RAISE EXCEPTION USING ERRCODE = 'ES002',
            MESSAGE = 'event id already recorded with different content';
    END IF;

    IF p_expected > 0 THEN
        UPDATE streams s SET version = s.version + n, last_txid = v_txid
         WHERE s.stream_id = p_stream AND s.version = p_expected AND s.last_txid <= v_txid
        RETURNING s.version INTO v_version;
    ELSE
        INSERT INTO streams AS s (stream_id, version, last_txid) VALUES (p_stream, n, v_txid)
        ON CONFLICT (stream_id) DO UPDATE SET version = s.version + n, last_txid = v_txid
         WHERE p_expected = -1 AND s.last_txid <= v_txid
        RETURNING s.version INTO v_version;
    END IF;

    IF v_version IS NULL THEN
        SELECT s.version, s.last_txid INTO v_actual, v_last FROM streams s WHERE s.stream_id = p_stream;
        IF p_expected = -1 OR (v_actual = p_expected AND v_last > v_txid) THEN
            RAISE EXCEPTION USING ERRCODE = 'ES003',
                MESSAGE = 'stream was appended to by a later transaction';
        END IF;
        RAISE EXCEPTION USING ERRCODE = 'ES001', MESSAGE = 'wrong expected version',
            DETAIL = coalesce(v_actual, 0)::text;
    END IF;

    RETURN QUERY
        INSERT INTO events AS e (stream_id, stream_version, event_id, event_type, schema_version, data, metadata)
        SELECT p_stream, v_version - n + x.ord, x.id, x.typ, x.sv, x.data, x.meta
          FROM unnest(p_ids, p_types, p_schema_versions, p_data, p_metadata)
               WITH ORDINALITY AS x(id, typ, sv, data, meta, ord)
         ORDER BY x.ord
        RETURNING e.stream_version, e.global_position, e.transaction_id::text::bigint, false;
END
$$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION eventstore_append;
DROP TABLE leases;
DROP TABLE checkpoints;
DROP TABLE streams;
DROP TABLE events;
