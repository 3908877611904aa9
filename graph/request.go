package graph

import (
	"context"
	"net/http"

	"github.com/imageservice/imageservice/auth"
	"github.com/imageservice/imageservice/eventstore"
	"github.com/imageservice/imageservice/tracing"
)

// eventMetadata is the metadata recorded with a request's events.
type eventMetadata = eventstore.Metadata

type metadataKey struct{}

// withRequestMetadata records, for the resolvers, a new correlation id for
// the request.
func withRequestMetadata(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m := eventstore.Metadata{CorrelationID: eventstore.NewEventID().String()}
		w.Header().Set("X-Correlation-Id", m.CorrelationID)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), metadataKey{}, m)))
	})
}

// requestMetadata is the metadata of the request in ctx, with the
// principal it acts as and the W3C traceparent of the current span (the
// operation's; without tracing, the one the request came with).
func requestMetadata(ctx context.Context) eventstore.Metadata {
	m, _ := ctx.Value(metadataKey{}).(eventstore.Metadata)
	m.Actor = auth.FromContext(ctx).Actor()
	m.TraceParent = tracing.TraceParent(ctx)
	return m
}
