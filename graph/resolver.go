// Package graph is the GraphQL API: the schema's resolvers, which turn
// input into commands and queries into read-model lookups, and the HTTP
// handler with its transports.
package graph

//go:generate go run github.com/99designs/gqlgen generate

import (
	"context"
	"errors"
	"log/slog"

	"github.com/google/uuid"

	"github.com/imageservice/imageservice/auth"
	"github.com/imageservice/imageservice/commands"
	"github.com/imageservice/imageservice/graph/model"
	"github.com/imageservice/imageservice/images"
	"github.com/imageservice/imageservice/live"
	"github.com/imageservice/imageservice/projections"
)

// Resolver is the root resolver; it holds the service's dependencies.
type Resolver struct {
	// Commands runs mutations and replays streams.
	Commands *commands.Service
	// Reads answers queries from the read models.
	Reads projections.Reader
	// Live feeds subscriptions.
	Live *live.Hub
	// BlobURL returns the public URL of a stored blob.
	BlobURL func(key string) string
	// Logger receives internal errors.
	Logger *slog.Logger
	// PrivateReads shows each principal only its own images (and admins
	// all); others' are answered as not found.
	PrivateReads bool

	// outcomes shares ditherCompleted's work among subscribers.
	outcomes outcomeCache
}

// visible reports whether the principal of ctx may read an image owned by owner.
func (r *Resolver) visible(ctx context.Context, owner string) bool {
	return auth.FromContext(ctx).Sees(owner, r.PrivateReads)
}

// image returns an image by id from the read model or, when the model has
// not caught up with a recent write yet, replayed from its stream, so a
// client always reads its own writes. Unknown ids give nil.
func (r *Resolver) image(ctx context.Context, id uuid.UUID) (*model.Image, error) {
	img, err := r.Reads.Image(ctx, id)
	if err == nil {
		if !r.visible(ctx, img.Owner) {
			return nil, nil
		}
		return imageModel(img), nil
	}
	if !errors.Is(err, projections.ErrNotFound) {
		return nil, err
	}
	state, err := r.loadState(ctx, id)
	if errors.Is(err, images.ErrNotFound) {
		return nil, nil
	}
	if err != nil || !r.visible(ctx, state.Owner) {
		return nil, err
	}
	return stateModel(state), nil
}

// dither returns a dither by id from the read model; unknown ids give nil.
func (r *Resolver) dither(ctx context.Context, id uuid.UUID) (*model.Dither, error) {
	d, err := r.Reads.Dither(ctx, id)
	if errors.Is(err, projections.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if r.PrivateReads {
		if img, err := r.image(ctx, d.ImageID); err != nil || img == nil {
			return nil, err
		}
	}
	return ditherModel(d), nil
}

// metadata returns the event metadata of the request in ctx.
func metadata(ctx context.Context, idempotencyKey *string) (m eventMetadata) {
	m = requestMetadata(ctx)
	if idempotencyKey != nil {
		m.IdempotencyKey = *idempotencyKey
	}
	return m
}

// imageURL is where the original can be fetched: its cloud copy once
// synced, else the service's own blob URL.
func (r *Resolver) imageURL(img *model.Image) string {
	if img.CloudURL != "" {
		return img.CloudURL
	}
	return r.BlobURL(img.Sha256)
}

// ditherURL is where a completed dither's result can be fetched.
func (r *Resolver) ditherURL(d *model.Dither) *string {
	switch {
	case d.CloudURL != "":
		return &d.CloudURL
	case d.ResultKey != "":
		u := r.BlobURL(d.ResultKey)
		return &u
	}
	return nil
}
