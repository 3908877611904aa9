package graph

import (
	"context"
	"sync"

	"github.com/99designs/gqlgen/graphql"
	"github.com/google/uuid"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/imageservice/imageservice/images"
)

// stateLoads shares the image states that one query replays: asking for
// the notifications of an image's twenty dithers replays its stream once,
// not twenty times. Field resolvers run concurrently, so the first to ask
// for an image loads it and the others wait for its answer.
type stateLoads struct {
	mu    sync.Mutex
	loads map[uuid.UUID]func() (images.Image, error)
}

type stateLoadsKey struct{}

// shareLoads gives each query operation its own stateLoads. Mutations and
// subscriptions get none: their answers must show the states as they
// change while the operation runs.
func shareLoads(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
	op := graphql.GetOperationContext(ctx)
	if op.Operation == nil || op.Operation.Operation != ast.Query {
		return next(ctx)
	}
	return next(context.WithValue(ctx, stateLoadsKey{}, &stateLoads{loads: map[uuid.UUID]func() (images.Image, error){}}))
}

// loadState returns an image's state replayed from its stream, once per
// query operation (see stateLoads), or at every call outside one.
func (r *Resolver) loadState(ctx context.Context, id uuid.UUID) (images.Image, error) {
	l, ok := ctx.Value(stateLoadsKey{}).(*stateLoads)
	if !ok {
		return r.Commands.Load(ctx, id)
	}
	l.mu.Lock()
	load, ok := l.loads[id]
	if !ok {
		load = sync.OnceValues(func() (images.Image, error) { return r.Commands.Load(ctx, id) })
		l.loads[id] = load
	}
	l.mu.Unlock()
	return load()
}
