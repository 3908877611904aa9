package sqlite

import (
	"context"
	"database/sql"
)

// BeginForTest starts a write transaction for the conformance suite's Tx.
func (s *Store) BeginForTest(ctx context.Context) (*sql.Tx, error) { return s.begin(ctx) }

// NotifyForTest wakes readers after a test's transaction commits.
func (s *Store) NotifyForTest() { s.changed.Notify() }

// MetadataFields exposes metadataFields to the column test.
var MetadataFields = metadataFields
