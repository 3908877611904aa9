package blobgc

import "context"

// TryOnce is tryOnce, for tests: one turn of Run.
func (s *Sweeper) TryOnce(ctx context.Context) { s.tryOnce(ctx) }
