package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// writeTx is a write transaction with the writer connection's prepared
// statements. SQLite compiles a statement on every ad hoc call, which cost
// as much as the rest of a one-event append; the statements of the common
// path are therefore prepared once, at Open, and reused by every
// transaction (database/sql binds them to the transaction's connection).
type writeTx struct {
	tx    *sql.Tx
	stmts map[string]*sql.Stmt // read-only after Open
}

func (w writeTx) stmt(ctx context.Context, query string) *sql.Stmt {
	if st, ok := w.stmts[query]; ok {
		return w.tx.StmtContext(ctx, st)
	}
	return nil
}

func (w writeTx) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if st := w.stmt(ctx, query); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return w.tx.QueryContext(ctx, query, args...)
}

func (w writeTx) queryRow(ctx context.Context, query string, args ...any) *sql.Row {
	if st := w.stmt(ctx, query); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return w.tx.QueryRowContext(ctx, query, args...)
}

func (w writeTx) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if st := w.stmt(ctx, query); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return w.tx.ExecContext(ctx, query, args...)
}

// preparedQueries are the statements prepared at Open: those of a
// one-event append and of a checkpoint.
func preparedQueries() []string {
	return []string{lookupSQL(1), streamVersionSQL, insertSQL(1), upsertStreamSQL, saveCheckpointSQL}
}

// prepare prepares the statements of preparedQueries on db.
func prepare(ctx context.Context, db *sql.DB) (map[string]*sql.Stmt, error) {
	stmts := map[string]*sql.Stmt{}
	for _, q := range preparedQueries() {
		st, err := db.PrepareContext(ctx, q)
		if err != nil {
			closeStmts(stmts)
			return nil, fmt.Errorf("prepare %q: %w", q, err)
		}
		stmts[q] = st
	}
	return stmts, nil
}

func closeStmts(stmts map[string]*sql.Stmt) error {
	var errs []error
	for _, st := range stmts {
		errs = append(errs, st.Close())
	}
	return errors.Join(errs...)
}
