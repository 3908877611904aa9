package graph

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/99designs/gqlgen/graphql"
	"github.com/google/uuid"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/imageservice/imageservice/commands"
	"github.com/imageservice/imageservice/graph/model"
	"github.com/imageservice/imageservice/images"
	"github.com/imageservice/imageservice/projections"
)

// Error codes of GraphQL errors (extensions.code).
const (
	codeBadUserInput = "BAD_USER_INPUT"
	codeInternal     = "INTERNAL_SERVER_ERROR"
	// codeUnavailable: the request needs a newer build of the service,
	// which a rolling deploy is bringing in (commands.ErrNewerEvents).
	codeUnavailable = "SERVICE_UNAVAILABLE"
)

// badInput is a GraphQL error for a bad argument of a query.
func badInput(field, format string, args ...any) *gqlerror.Error {
	return &gqlerror.Error{
		Message:    fmt.Sprintf(format, args...),
		Extensions: map[string]any{"code": codeBadUserInput, "field": field},
	}
}

// parseID parses a UUID argument of a query.
func parseID(field, id string) (uuid.UUID, error) {
	u, err := uuid.Parse(id)
	if err != nil {
		return uuid.Nil, badInput(field, "%s is not a valid id (a UUID is expected)", field)
	}
	return u, nil
}

// userErrors turns a command's error into the payload's userErrors when
// it is the user's to fix, or returns it as an internal error.
func userErrors(err error) ([]model.UserError, error) {
	if err == nil {
		return []model.UserError{}, nil
	}
	var e *images.Error
	if errors.As(err, &e) {
		ue := model.UserError{Message: e.Message, Code: e.Code}
		if e.Field != "" {
			ue.Field = &e.Field
		}
		return []model.UserError{ue}, nil
	}
	return nil, err
}

// userError is one userErrors entry.
func userError(field, code, message string) []model.UserError {
	return []model.UserError{{Field: &field, Code: code, Message: message}}
}

// pageError turns a read model's paging errors into GraphQL errors.
func pageError(err error) error {
	switch {
	case errors.Is(err, projections.ErrInvalidPage):
		return badInput("first", "first must be between 1 and %d", projections.MaxPageSize)
	case errors.Is(err, projections.ErrInvalidCursor):
		return badInput("after", "after is not a cursor of this list")
	}
	return err
}

// presentError shows the user's errors as they are and hides everything
// else (SQL, internals) behind a generic message that is logged.
func presentError(log *slog.Logger) graphql.ErrorPresenterFunc {
	return func(ctx context.Context, err error) *gqlerror.Error {
		var gqlErr *gqlerror.Error
		if errors.As(err, &gqlErr) && gqlErr.Extensions["code"] != nil {
			return graphql.DefaultErrorPresenter(ctx, err)
		}
		if errors.As(err, &gqlErr) && gqlErr.Err == nil {
			return graphql.DefaultErrorPresenter(ctx, err) // parse and validation errors
		}
		var failed resolverFailed
		if !errors.As(err, &failed) && errors.As(err, &gqlErr) {
			// An argument the validator let through but that could not be
			// coerced (an enum value in the wrong case, a string where an
			// Upload goes): gqlgen wraps the unmarshaller's error with the
			// argument's path, and no resolver ran.
			out := graphql.DefaultErrorPresenter(ctx, err)
			out.Extensions = map[string]any{"code": codeBadUserInput}
			return out
		}
		if errors.Is(err, commands.ErrNewerEvents) {
			log.WarnContext(ctx, "graphql resolver refused: the image holds events of a newer build",
				"path", graphql.GetPath(ctx).String(), "err", err)
			return &gqlerror.Error{Message: commands.ErrNewerEvents.Error(), Path: graphql.GetPath(ctx),
				Extensions: map[string]any{"code": codeUnavailable}}
		}
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return &gqlerror.Error{Message: "request cancelled or timed out", Path: graphql.GetPath(ctx),
				Extensions: map[string]any{"code": "TIMEOUT"}}
		}
		log.ErrorContext(ctx, "graphql resolver failed", "path", graphql.GetPath(ctx).String(), "err", err)
		return &gqlerror.Error{Message: "internal error", Path: graphql.GetPath(ctx),
			Extensions: map[string]any{"code": codeInternal}}
	}
}

// resolverFailed marks the errors that resolvers return, which gqlgen
// wraps as it wraps the errors of arguments it cannot coerce: only the
// latter are the client's.
type resolverFailed struct{ error }

func (e resolverFailed) Unwrap() error { return e.error }

// markResolverErrors marks every error a field's resolver returns (see
// resolverFailed). Arguments are coerced before the resolver middleware
// runs, so their errors are not marked.
func markResolverErrors(ctx context.Context, next graphql.Resolver) (any, error) {
	res, err := next(ctx)
	if err != nil {
		err = resolverFailed{err}
	}
	return res, err
}

// recoverPanic turns a resolver's panic into an internal error.
func recoverPanic(log *slog.Logger) graphql.RecoverFunc {
	return func(ctx context.Context, p any) error {
		log.ErrorContext(ctx, "graphql resolver panicked", "panic", fmt.Sprint(p))
		return &gqlerror.Error{Message: "internal error", Extensions: map[string]any{"code": codeInternal}}
	}
}
