package graph

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/google/uuid"

	"github.com/imageservice/imageservice/eventstore"
	"github.com/imageservice/imageservice/graph/model"
	"github.com/imageservice/imageservice/images"
	"github.com/imageservice/imageservice/projections"
)

// pageArgs checks a connection's first and after arguments.
func pageArgs(first *int, after *string, def int) (int, projections.Cursor, error) {
	n := def
	if first != nil {
		n = *first
	}
	if err := projections.CheckPageSize(n); err != nil {
		return 0, "", pageError(err)
	}
	if after == nil || *after == "" {
		return n, "", nil
	}
	c, err := projections.ParseCursor(*after)
	if err != nil {
		return 0, "", pageError(err)
	}
	return n, c, nil
}

func (r *Resolver) images(ctx context.Context, first *int, after *string) (*model.ImageConnection, error) {
	n, cursor, err := pageArgs(first, after, 20)
	if err != nil {
		return nil, err
	}
	page, err := r.Reads.Images(ctx, n, cursor)
	if err != nil {
		return nil, pageError(err)
	}
	conn := &model.ImageConnection{Edges: make([]model.ImageEdge, 0, len(page.Items))}
	for i, img := range page.Items {
		if r.visible(ctx, img.Owner) { // private reads: a page may come out short
			conn.Edges = append(conn.Edges, model.ImageEdge{Cursor: string(page.Cursors[i]), Node: imageModel(img)})
		}
	}
	conn.PageInfo = pageInfo(page.HasNext, page.HasPrevious, page.Cursors)
	if err := r.prefetchDithers(ctx, conn); err != nil {
		return nil, err
	}
	return conn, nil
}

// prefetchDithers loads, when the query asks for edges.node.dithers (a
// first page), the dithers of every image of the page in one query, so
// that a page costs a constant number of queries, not one per image.
func (r *Resolver) prefetchDithers(ctx context.Context, conn *model.ImageConnection) error {
	field := lookAhead(ctx, "edges", "node", "dithers")
	if field == nil || len(conn.Edges) == 0 {
		return nil
	}
	first, ok := firstPageArg(ctx, field)
	if !ok {
		return nil
	}
	ids := make([]uuid.UUID, len(conn.Edges))
	for i, e := range conn.Edges {
		ids[i] = e.Node.UUID
	}
	pages, err := r.Reads.DithersByImage(ctx, ids, first)
	if err != nil {
		return err
	}
	for _, e := range conn.Edges {
		e.Node.FirstDithers, e.Node.FirstDithersSize = ditherConnection(pages[e.Node.UUID]), first
	}
	return nil
}

// lookAhead returns the field at the path below the current field in the
// query, or nil when the query does not ask for it.
func lookAhead(ctx context.Context, path ...string) *graphql.CollectedField {
	op := graphql.GetOperationContext(ctx)
	fields := graphql.CollectFieldsCtx(ctx, nil)
	var found *graphql.CollectedField
	for _, name := range path {
		found = nil
		for i := range fields {
			if fields[i].Name == name {
				found = &fields[i]
				break
			}
		}
		if found == nil {
			return nil
		}
		fields = graphql.CollectFields(op, found.Selections, nil)
	}
	return found
}

func pageInfo(hasNext, hasPrevious bool, cursors []projections.Cursor) *model.PageInfo {
	pi := &model.PageInfo{HasNextPage: hasNext, HasPreviousPage: hasPrevious}
	if len(cursors) > 0 {
		start, end := string(cursors[0]), string(cursors[len(cursors)-1])
		pi.StartCursor, pi.EndCursor = &start, &end
	}
	return pi
}

// dithers is the batch resolver of Image.dithers: one read-model query for
// every image of a page that is not already at hand.
func (r *Resolver) dithers(ctx context.Context, objs []*model.Image, first *int, after *string) ([]*model.DitherConnection, error) {
	n, cursor, err := pageArgs(first, after, 20)
	if err != nil {
		return nil, err
	}
	out := make([]*model.DitherConnection, len(objs))
	var missing []uuid.UUID
	for i, img := range objs {
		if img.FirstDithers != nil && cursor == "" && img.FirstDithersSize == n {
			out[i] = img.FirstDithers
		} else if img.Dithers != nil {
			if out[i], err = dithersInMemory(img.Dithers, n, cursor); err != nil {
				return nil, err
			}
		} else if cursor == "" {
			missing = append(missing, img.UUID)
		} else {
			page, err := r.Reads.Dithers(ctx, img.UUID, n, cursor)
			if err != nil {
				return nil, pageError(err)
			}
			out[i] = ditherConnection(page)
		}
	}
	if len(missing) == 0 {
		return withParents(objs, out), nil
	}
	pages, err := r.Reads.DithersByImage(ctx, missing, n)
	if err != nil {
		return nil, err
	}
	for i, img := range objs {
		if out[i] == nil {
			out[i] = ditherConnection(pages[img.UUID])
		}
	}
	return withParents(objs, out), nil
}

// withParents links each listed dither to the image it is listed under,
// so Dither.image needs no query.
func withParents(objs []*model.Image, conns []*model.DitherConnection) []*model.DitherConnection {
	for i, c := range conns {
		for _, e := range c.Edges {
			e.Node.Parent = objs[i]
		}
	}
	return conns
}

func ditherConnection(page projections.Page[projections.Dither]) *model.DitherConnection {
	conn := &model.DitherConnection{Edges: make([]model.DitherEdge, len(page.Items))}
	for i, d := range page.Items {
		conn.Edges[i] = model.DitherEdge{Cursor: string(page.Cursors[i]), Node: ditherModel(d)}
	}
	conn.PageInfo = pageInfo(page.HasNext, page.HasPrevious, page.Cursors)
	return conn
}

// dithersInMemory pages through dithers already at hand (request order).
func dithersInMemory(all []*model.Dither, first int, after projections.Cursor) (*model.DitherConnection, error) {
	start := 0
	if after != "" {
		seq, err := after.DitherKey()
		if err != nil {
			return nil, pageError(err)
		}
		start = min(seq, len(all))
	}
	end := min(start+first, len(all))
	conn := &model.DitherConnection{Edges: make([]model.DitherEdge, 0, end-start)}
	cursors := make([]projections.Cursor, 0, end-start)
	for i := start; i < end; i++ {
		c := projections.NewDitherCursor(i + 1)
		cursors = append(cursors, c)
		conn.Edges = append(conn.Edges, model.DitherEdge{Cursor: string(c), Node: all[i]})
	}
	conn.PageInfo = pageInfo(end < len(all), start > 0, cursors)
	return conn, nil
}

// ditherImages is the batch resolver of Dither.image.
func (r *Resolver) ditherImages(ctx context.Context, objs []*model.Dither) ([]*model.Image, error) {
	out := make([]*model.Image, len(objs))
	var ids []uuid.UUID
	for i, d := range objs {
		if d.Parent != nil {
			out[i] = d.Parent
		} else {
			ids = append(ids, d.ImageID)
		}
	}
	if len(ids) == 0 {
		return out, nil
	}
	found, err := r.Reads.ImagesByID(ctx, ids)
	if err != nil {
		return nil, err
	}
	for i, d := range objs {
		if out[i] != nil {
			continue
		}
		id := d.ImageID
		if img, ok := found[id]; ok {
			out[i] = imageModel(img)
			continue
		}
		if out[i], err = r.image(ctx, id); err != nil { // not projected yet
			return nil, err
		}
		if out[i] == nil {
			return nil, fmt.Errorf("dither %s: image %s not found", objs[i].ID, id)
		}
	}
	return out, nil
}

// historyCursor encodes a stream version as an opaque cursor.
func historyCursor(version int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte("history:" + strconv.FormatInt(version, 10)))
}

func parseHistoryCursor(after *string) (int64, error) {
	if after == nil || *after == "" {
		return 0, nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(*after)
	v, ok := strings.CutPrefix(string(raw), "history:")
	n, perr := strconv.ParseInt(v, 10, 64)
	if err != nil || !ok || perr != nil || n < 0 {
		return 0, badInput("after", "after is not a cursor of this list")
	}
	return n, nil
}

func (r *Resolver) history(ctx context.Context, img *model.Image, first *int, after *string) (*model.EventConnection, error) {
	n := 50
	if first != nil {
		n = *first
	}
	if err := projections.CheckPageSize(n); err != nil {
		return nil, pageError(err)
	}
	from, err := parseHistoryCursor(after)
	if err != nil {
		return nil, err
	}
	events, err := r.Commands.History(ctx, img.UUID, from, n+1)
	if err != nil {
		return nil, err
	}
	if img.Snapshot {
		// The image as it was: the events after its version had not happened.
		events = slices.DeleteFunc(events, func(e eventstore.Event) bool { return e.StreamVersion > img.Version })
	}
	conn := &model.EventConnection{}
	cursors := make([]projections.Cursor, 0, n)
	for i, e := range events {
		if i == n {
			break
		}
		c := historyCursor(e.StreamVersion)
		cursors = append(cursors, projections.Cursor(c))
		conn.Edges = append(conn.Edges, model.EventEdge{Cursor: c, Node: eventModel(e)})
	}
	if conn.Edges == nil {
		conn.Edges = []model.EventEdge{}
	}
	conn.PageInfo = pageInfo(len(events) > n, from > 0, cursors)
	return conn, nil
}

func (r *Resolver) imageAt(ctx context.Context, id string, version int) (*model.Image, error) {
	u, err := parseID("id", id)
	if err != nil {
		return nil, err
	}
	if img, err := r.image(ctx, u); err != nil || img == nil {
		return nil, err
	}
	state, err := r.Commands.LoadAt(ctx, u, int64(version))
	var domainErr *images.Error
	if errors.As(err, &domainErr) {
		if domainErr.Code == images.CodeNotFound {
			return nil, nil
		}
		return nil, badInput(domainErr.Field, "%s", domainErr.Message)
	}
	if err != nil {
		return nil, err
	}
	img := stateModel(state)
	img.Snapshot = true
	return img, nil
}

func (r *Resolver) node(ctx context.Context, id string) (model.Node, error) {
	u, err := parseID("id", id)
	if err != nil {
		return nil, err
	}
	img, err := r.image(ctx, u)
	if err != nil || img != nil {
		return img, err
	}
	d, err := r.dither(ctx, u)
	if err != nil || d == nil {
		return nil, err
	}
	return d, nil
}

// imageWithDithers is a read model that can return an image and its first
// dithers in one round trip.
type imageWithDithers interface {
	ImageWithDithers(ctx context.Context, id uuid.UUID, first int) (projections.Image, projections.Page[projections.Dither], error)
}

// imageQuery answers image(id): when the query asks for the image's first
// page of dithers and the read model can, both come in one round trip.
func (r *Resolver) imageQuery(ctx context.Context, id uuid.UUID) (*model.Image, error) {
	reads, ok := r.Reads.(imageWithDithers)
	field := lookAhead(ctx, "dithers")
	if !ok || field == nil {
		return r.image(ctx, id)
	}
	first, prefetch := firstPageArg(ctx, field)
	if !prefetch {
		return r.image(ctx, id)
	}
	img, page, err := reads.ImageWithDithers(ctx, id, first)
	if errors.Is(err, projections.ErrNotFound) {
		return r.image(ctx, id) // not projected yet: replayed from the log
	}
	if err != nil || !r.visible(ctx, img.Owner) {
		return nil, err
	}
	m := imageModel(img)
	m.FirstDithers, m.FirstDithersSize = ditherConnection(page), first
	return m, nil
}

// firstPageArg reads a dithers field's first argument; ok is false when
// the field asks for a later page or an invalid size (its resolver then
// answers).
func firstPageArg(ctx context.Context, field *graphql.CollectedField) (int, bool) {
	args := field.ArgumentMap(graphql.GetOperationContext(ctx).Variables)
	if after, _ := args["after"].(string); after != "" {
		return 0, false
	}
	first := 20
	if f, ok := args["first"].(int64); ok {
		first = int(f)
	} else if f, ok := args["first"].(int); ok {
		first = f
	}
	return first, projections.CheckPageSize(first) == nil
}
