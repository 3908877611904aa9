package graph

import (
	"context"
	"fmt"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// traceOperations starts a span for every operation, named after its type
// and name ("mutation uploadImage"), the current span of its resolvers, so
// that the events they append record it as their trace parent. A query's
// or mutation's span ends with its response; a subscription's once it is
// set up, as its events arrive much later.
func traceOperations(tracer trace.Tracer) graphql.OperationMiddleware {
	return func(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
		op := graphql.GetOperationContext(ctx)
		kind, name := operationName(op)
		attrs := []attribute.KeyValue{attribute.String("graphql.operation.type", kind)}
		if op.OperationName != "" {
			attrs = append(attrs, attribute.String("graphql.operation.name", op.OperationName))
		}
		ctx, span := tracer.Start(ctx, strings.TrimSpace(kind+" "+name), trace.WithAttributes(attrs...))
		h := next(ctx)
		if kind == string(ast.Subscription) {
			span.End()
			return h
		}
		ended := false
		return func(ctx context.Context) *graphql.Response {
			resp := h(ctx)
			if !ended {
				ended = true
				if resp != nil && len(resp.Errors) > 0 {
					span.SetStatus(codes.Error, errorSummary(resp))
				}
				span.End()
			}
			return resp
		}
	}
}

// operationName returns an operation's type and its name: the name the
// client gave it, or else its root fields ("uploadImage"), which come
// from the schema and so stay few.
func operationName(op *graphql.OperationContext) (string, string) {
	if op == nil || op.Operation == nil {
		return "operation", ""
	}
	kind := string(op.Operation.Operation)
	if op.OperationName != "" {
		return kind, op.OperationName
	}
	var fields []string
	for _, sel := range op.Operation.SelectionSet {
		if f, ok := sel.(*ast.Field); ok && len(fields) < 3 {
			fields = append(fields, f.Name)
		}
	}
	return kind, strings.Join(fields, ",")
}

// errorSummary describes a response's errors by their codes, never by
// their messages, which may repeat the client's input.
func errorSummary(resp *graphql.Response) string {
	var codes []string
	for _, e := range resp.Errors {
		if c, ok := e.Extensions["code"].(string); ok {
			codes = append(codes, c)
		}
	}
	if len(codes) == 0 {
		return fmt.Sprintf("%d errors", len(resp.Errors))
	}
	return strings.Join(codes, ",")
}
