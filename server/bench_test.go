package server_test

// Benchmarks of the GraphQL API (issue 4) and of the processors (issue 5).
// They need PostgreSQL (TEST_DATABASE_URL) and are skipped without it; see
// docs/benchmarks.md for the commands and the results. Every benchmark
// measures our side and its peer in the same run and prints the ratios.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"image"
	"image/png"
	"io"
	"log/slog"
	"math"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"
	"github.com/google/uuid"

	"github.com/imageservice/imageservice/blobstore"
	blobpg "github.com/imageservice/imageservice/blobstore/postgres"
	"github.com/imageservice/imageservice/commands"
	"github.com/imageservice/imageservice/eventstore"
	"github.com/imageservice/imageservice/graph"
	"github.com/imageservice/imageservice/imagefile"
	"github.com/imageservice/imageservice/images"
	"github.com/imageservice/imageservice/processors"
	"github.com/imageservice/imageservice/projections"
	"github.com/imageservice/imageservice/server"
)

// ---------------------------------------------------------------------------
// Issue 4: queries per second, the store against the same gqlgen handler
// serving the same data from memory.

// BenchmarkAPI serves images(first: 20) and image(id) from the service
// (PostgreSQL read model) and from the same schema and resolvers over an
// in-memory projections.Reader holding the same 200 images and dithers,
// read once from the real model. The responses are checked to be
// byte-identical first, so the only difference is the store.
func BenchmarkAPI(b *testing.B) {
	const nImages = 1000
	ctx := context.Background()
	fmt.Printf("BenchmarkAPI: load average at start %s\n", loadavg())
	e := start(b, server.Config{AutoDither: true, NoProcessors: true, Logger: quietLogger()})
	seed(b, e, nImages)
	mem, err := loadMemory(ctx, e.srv.ReadModel())
	if err != nil {
		b.Fatal(err)
	}
	if len(mem.images) != nImages || len(mem.dithers) != nImages {
		b.Fatalf("memory model holds %d images and %d dithers, want %d each", len(mem.images), len(mem.dithers), nImages)
	}
	// Both sides are the same GraphQL handler, with nothing around it, on
	// the real read model or on the in-memory one.
	handler := func(reads projections.Reader) *httptest.Server {
		srv := httptest.NewServer(graph.NewHandler(&graph.Resolver{
			Commands: e.srv.Commands(), Reads: reads, Live: e.srv.Hub(), Logger: quietLogger(),
			BlobURL: func(key string) string { return e.http.URL + "/blobs/" + key },
		}, graph.HandlerOptions{}))
		b.Cleanup(srv.Close)
		return srv
	}
	sides := []struct {
		name string
		c    *client
	}{
		{"store", newClient(handler(e.srv.Reads()).URL)},        // as the service reads: through its cache
		{"memory", newClient(handler(mem).URL)},                 // the peer
		{"uncached", newClient(handler(e.srv.ReadModel()).URL)}, // the read model alone
	}

	imagesBody := gqlBody(`query { images(first: 20) { edges { cursor node { `+imageFields+` } } pageInfo { hasNextPage endCursor } } }`, nil)
	imageBodies := make([][]byte, nImages)
	for i, img := range mem.images {
		imageBodies[i] = gqlBody(`query ($id: ID!) { image(id: $id) { `+imageFields+` } }`, map[string]any{"id": img.ID.String()})
	}
	queries := []struct {
		name string
		body func(i int64) []byte
	}{
		{"images", func(int64) []byte { return imagesBody }},
		{"image", func(i int64) []byte { return imageBodies[i%nImages] }},
	}
	// Every side must answer the same bytes, twice (the second time from
	// the cache where there is one).
	for _, q := range queries {
		for i := range int64(6) {
			theirs, err := sides[1].c.query(ctx, q.body(i%3))
			if err != nil {
				b.Fatal(err)
			}
			for _, side := range []int{0, 2} {
				ours, err := sides[side].c.query(ctx, q.body(i%3))
				if err != nil {
					b.Fatal(err)
				}
				if !bytes.Equal(ours, theirs) {
					b.Fatalf("%s: %s answered\n%s\nthe memory model\n%s", q.name, sides[side].name, ours, theirs)
				}
			}
		}
	}

	for _, q := range queries {
		b.Run(q.name, func(b *testing.B) {
			perSide := alternate(b, len(sides), 4*runtime.GOMAXPROCS(0), func(side int, i int64) error {
				_, err := sides[side].c.query(ctx, q.body(i))
				return err
			})
			st, mm, un := perSide[0], perSide[1], perSide[2]
			b.ReportMetric(st, "store-req/s")
			b.ReportMetric(mm, "memory-req/s")
			b.ReportMetric(st/mm, "store/memory")
			b.ReportMetric(un/mm, "uncached/memory")
			b.ReportMetric(0, "ns/op")
			if b.N < rounds {
				return // the framework's trial run
			}
			fmt.Printf("BenchmarkAPI %-6s N=%d: store %6.0f req/s, memory %6.0f req/s, store/memory %.2f (target: the store costs < 2x, ratio > 0.5); uncached read model %6.0f req/s, %.2f\n",
				q.name, b.N, st, mm, st/mm, un, un/mm)
		})
	}
	// SQL statements per request on the store side.
	for _, q := range queries {
		before := e.queries.Load()
		req, _ := http.NewRequest(http.MethodPost, e.http.URL+"/query", bytes.NewReader(q.body(7)))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Count-Queries", "1")
		if _, err := sides[0].c.do(req); err != nil {
			b.Fatal(err)
		}
		fmt.Printf("BenchmarkAPI %-6s: %d SQL statements per request on the store\n", q.name, e.queries.Load()-before)
	}
	fmt.Printf("BenchmarkAPI: load average at end %s\n", loadavg())
}

// rounds is how many times alternate switches between the sides.
const rounds = 10

// alternate runs b.N operations on each of nSides sides from workers
// goroutines, in rounds of b.N/rounds that alternate between the sides
// (in order, then in reverse order, ...), so that outside load hits every
// side alike. It returns each side's operations per second.
func alternate(b *testing.B, nSides, workers int, op func(side int, i int64) error) []float64 {
	spent := make([]time.Duration, nSides)
	ops := make([]int, nSides)
	var seq atomic.Int64
	b.ResetTimer()
	for r := range rounds {
		n := b.N / rounds
		if r < b.N%rounds {
			n++
		}
		for k := range nSides {
			side := k
			if r%2 == 1 {
				side = nSides - 1 - k
			}
			var left atomic.Int64
			left.Store(int64(n))
			t0 := time.Now()
			var wg sync.WaitGroup
			for range min(workers, n) {
				wg.Go(func() {
					for left.Add(-1) >= 0 {
						if err := op(side, seq.Add(1)); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			spent[side] += time.Since(t0)
			ops[side] += n
		}
	}
	b.StopTimer()
	if b.Failed() {
		b.FailNow()
	}
	rates := make([]float64, nSides)
	for i := range rates {
		rates[i] = float64(ops[i]) / spent[i].Seconds()
	}
	return rates
}

// BenchmarkBlobs serves an image's original from the service's /blobs/
// (its middleware, and the check that some image not deleted still uses
// the blob) and from the bare blobstore.Handler on the same PostgreSQL
// blob store, the peer, alternately.
func BenchmarkBlobs(b *testing.B) {
	e := start(b, server.Config{NoProcessors: true, Logger: quietLogger()})
	img := e.mustUpload("blob.png", pngBytes(64, 48))
	bare := httptest.NewServer(http.StripPrefix("/blobs/", blobstore.Handler(blobpg.New(e.pool), blobstore.HandlerOptions{})))
	b.Cleanup(bare.Close)
	urls := []string{img.URL, bare.URL + "/blobs/" + img.Sha256}
	hc := &http.Client{Transport: &http.Transport{MaxIdleConns: 128, MaxIdleConnsPerHost: 128}}
	rates := alternate(b, len(urls), 4*runtime.GOMAXPROCS(0), func(side int, _ int64) error {
		resp, err := hc.Get(urls[side])
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if _, err := io.Copy(io.Discard, resp.Body); err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %s", urls[side], resp.Status)
		}
		return nil
	})
	b.ReportMetric(rates[0], "service-req/s")
	b.ReportMetric(rates[1], "bare-req/s")
	b.ReportMetric(rates[0]/rates[1], "service/bare")
	b.ReportMetric(0, "ns/op")
	if b.N >= rounds {
		fmt.Printf("BenchmarkBlobs N=%d: service %6.0f req/s, bare blob handler %6.0f req/s, service/bare %.2f\n",
			b.N, rates[0], rates[1], rates[0]/rates[1])
	}
}

// seed uploads n small images, each with its automatic dither, completes
// every other dither and waits until the read model holds them all.
func seed(b *testing.B, e *env, n int) {
	ctx := context.Background()
	small := pngBytes(64, 48)
	meta := eventstore.Metadata{Actor: "bench"}
	var last eventstore.Position
	for i := range n {
		res, err := e.srv.Commands().Upload(ctx, commands.UploadInput{
			Body: bytes.NewReader(withText(small, int64(i))), Filename: fmt.Sprintf("seed-%04d.png", i), Metadata: meta,
		})
		if err != nil {
			b.Fatal(err)
		}
		last = res.Position
		if i%2 == 1 {
			continue
		}
		img := res.Image
		d := img.Dithers[0]
		res, err = e.srv.Commands().CompleteDither(ctx, img.ID, images.DitherResult{
			DitherID: d.ID, ResultKey: img.SHA256, ByteSize: img.ByteSize, Width: img.Width, Height: img.Height,
			Colours: 8, DurationMs: 3, CompletedAt: time.Now(),
		}, meta)
		if err != nil {
			b.Fatal(err)
		}
		last = res.Position
	}
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := e.srv.ReadModel().WaitFor(wctx, last); err != nil {
		b.Fatal(err)
	}
	// Statistics, as autovacuum keeps them on a live database: without
	// them the planner may not know how large the read model has grown.
	if _, err := e.pool.Exec(ctx, "ANALYZE image_view, dither_view"); err != nil {
		b.Fatal(err)
	}
}

// memReader is a projections.Reader over slices and maps: the peer of the
// PostgreSQL read model.
type memReader struct {
	images  []projections.Image // not deleted, newest first
	byID    map[uuid.UUID]projections.Image
	dithers map[uuid.UUID]projections.Dither
	byImage map[uuid.UUID][]projections.Dither // in Seq order
}

// loadMemory reads every image and dither of r once.
func loadMemory(ctx context.Context, r projections.Reader) (*memReader, error) {
	m := &memReader{byID: map[uuid.UUID]projections.Image{}, dithers: map[uuid.UUID]projections.Dither{},
		byImage: map[uuid.UUID][]projections.Dither{}}
	var after projections.Cursor
	for {
		page, err := r.Images(ctx, projections.MaxPageSize, after)
		if err != nil {
			return nil, err
		}
		for _, img := range page.Items {
			m.images = append(m.images, img)
			m.byID[img.ID] = img
			var dafter projections.Cursor
			for {
				dp, err := r.Dithers(ctx, img.ID, projections.MaxPageSize, dafter)
				if err != nil {
					return nil, err
				}
				for _, d := range dp.Items {
					m.dithers[d.ID] = d
					m.byImage[img.ID] = append(m.byImage[img.ID], d)
				}
				if !dp.HasNext {
					break
				}
				dafter = dp.EndCursor()
			}
		}
		if !page.HasNext {
			return m, nil
		}
		after = page.EndCursor()
	}
}

func (m *memReader) Image(_ context.Context, id uuid.UUID) (projections.Image, error) {
	img, ok := m.byID[id]
	if !ok {
		return projections.Image{}, fmt.Errorf("image %s: %w", id, projections.ErrNotFound)
	}
	return img, nil
}

func (m *memReader) Images(_ context.Context, first int, after projections.Cursor) (projections.Page[projections.Image], error) {
	if err := projections.CheckPageSize(first); err != nil {
		return projections.Page[projections.Image]{}, err
	}
	start := 0
	if after != "" {
		at, id, err := after.ImageKey()
		if err != nil {
			return projections.Page[projections.Image]{}, err
		}
		// The first image whose (created_at, id) is below the cursor's.
		start = sort.Search(len(m.images), func(i int) bool {
			img := m.images[i]
			c := img.CreatedAt.Compare(at)
			return c < 0 || c == 0 && bytes.Compare(img.ID[:], id[:]) < 0
		})
	}
	end := min(start+first, len(m.images))
	return memPage(m.images[start:end], end < len(m.images), after != "", func(img projections.Image) projections.Cursor {
		return projections.NewImageCursor(img.CreatedAt, img.ID)
	}), nil
}

func (m *memReader) ImagesByID(_ context.Context, ids []uuid.UUID) (map[uuid.UUID]projections.Image, error) {
	out := make(map[uuid.UUID]projections.Image, len(ids))
	for _, id := range ids {
		if img, ok := m.byID[id]; ok {
			out[id] = img
		}
	}
	return out, nil
}

func (m *memReader) Dither(_ context.Context, id uuid.UUID) (projections.Dither, error) {
	d, ok := m.dithers[id]
	if !ok {
		return projections.Dither{}, fmt.Errorf("dither %s: %w", id, projections.ErrNotFound)
	}
	return d, nil
}

func (m *memReader) Dithers(_ context.Context, imageID uuid.UUID, first int, after projections.Cursor) (projections.Page[projections.Dither], error) {
	if err := projections.CheckPageSize(first); err != nil {
		return projections.Page[projections.Dither]{}, err
	}
	seq := 0
	if after != "" {
		var err error
		if seq, err = after.DitherKey(); err != nil {
			return projections.Page[projections.Dither]{}, err
		}
	}
	all := m.byImage[imageID]
	start, _ := slices.BinarySearchFunc(all, seq+1, func(d projections.Dither, s int) int { return d.Seq - s })
	end := min(start+first, len(all))
	return memPage(all[start:end], end < len(all), after != "", ditherCursor), nil
}

func (m *memReader) DithersByImage(_ context.Context, imageIDs []uuid.UUID, first int) (map[uuid.UUID]projections.Page[projections.Dither], error) {
	if err := projections.CheckPageSize(first); err != nil {
		return nil, err
	}
	out := make(map[uuid.UUID]projections.Page[projections.Dither], len(imageIDs))
	for _, id := range imageIDs {
		all := m.byImage[id]
		end := min(first, len(all))
		out[id] = memPage(all[:end], end < len(all), false, ditherCursor)
	}
	return out, nil
}

// ImageWithDithers gives the peer the resolver path that the PostgreSQL
// model takes for image(id) with its dithers.
func (m *memReader) ImageWithDithers(ctx context.Context, id uuid.UUID, first int) (projections.Image, projections.Page[projections.Dither], error) {
	img, err := m.Image(ctx, id)
	if err != nil {
		return img, projections.Page[projections.Dither]{}, err
	}
	page, err := m.Dithers(ctx, id, first, "")
	return img, page, err
}

func ditherCursor(d projections.Dither) projections.Cursor { return projections.NewDitherCursor(d.Seq) }

// memPage copies items into a page, as the PostgreSQL model returns fresh
// slices.
func memPage[T any](items []T, hasNext, hasPrevious bool, cursor func(T) projections.Cursor) projections.Page[T] {
	p := projections.Page[T]{Items: slices.Clone(items), HasNext: hasNext, HasPrevious: hasPrevious}
	if p.Items == nil {
		p.Items = []T{}
	}
	p.Cursors = make([]projections.Cursor, len(items))
	for i, it := range items {
		p.Cursors[i] = cursor(it)
	}
	return p
}

// ---------------------------------------------------------------------------
// Issue 4: upload throughput of a 1 MP PNG.

// BenchmarkUpload uploads a photo-like 1 MP PNG (about 2 MB; every upload
// has its own bytes, so its own blob) through the GraphQL multipart
// endpoint, 2 uploads at a time per core, and, in the same run, the raw
// floor of any upload that is checked and stored: imagefile.Decode, sha256
// and one INSERT of the bytes into a table like blobs ("raw"), and the CPU
// part of it alone ("decode": imagefile.Decode and sha256).
func BenchmarkUpload(b *testing.B) {
	ctx := context.Background()
	fmt.Printf("BenchmarkUpload: load average at start %s\n", loadavg())
	e := start(b, server.Config{AutoDither: true, NoProcessors: true, Logger: quietLogger()})
	if _, err := e.pool.Exec(ctx, `CREATE TABLE raw_blobs (LIKE blobs INCLUDING ALL)`); err != nil {
		b.Fatal(err)
	}
	photo := photoPNG()
	c := newClient(e.http.URL)
	var seq atomic.Int64 // every upload of the run has its own bytes
	steps := []struct {
		name string
		do   func(data []byte) error
	}{
		{"graphql", func(data []byte) error {
			_, _, err := c.upload(ctx, "photo.png", data, true)
			return err
		}},
		{"raw", func(data []byte) error {
			_, info, err := imagefile.Decode(bytes.NewReader(data), imagefile.Limits{})
			if err != nil {
				return err
			}
			sum := sha256.Sum256(data)
			_, err = e.pool.Exec(ctx, `INSERT INTO raw_blobs (key, content_type, size, data) VALUES ($1, $2, $3, $4)`,
				hex.EncodeToString(sum[:]), info.ContentType, len(data), data)
			return err
		}},
		{"decode", func(data []byte) error {
			_, _, err := imagefile.Decode(bytes.NewReader(data), imagefile.Limits{})
			_ = sha256.Sum256(data)
			return err
		}},
	}
	b.Run("1MP", func(b *testing.B) {
		r := alternate(b, len(steps), 2*runtime.GOMAXPROCS(0), func(side int, _ int64) error {
			return steps[side].do(withText(photo, seq.Add(1)))
		})
		mb := float64(len(photo)) / 1e6
		b.ReportMetric(r[0], "graphql-uploads/s")
		b.ReportMetric(r[0]*mb, "graphql-MB/s")
		b.ReportMetric(r[1], "raw-uploads/s")
		b.ReportMetric(r[2], "decode-uploads/s")
		b.ReportMetric(r[0]/r[1], "graphql/raw")
		b.ReportMetric(0, "ns/op")
		if b.N < rounds {
			return // the framework's trial run
		}
		fmt.Printf("BenchmarkUpload N=%d: %.2f MB PNG; graphql %.1f uploads/s (%.1f MB/s), raw decode+sha256+INSERT %.1f/s (%.1f MB/s), decode+sha256 only %.1f/s; graphql/raw %.2f\n",
			b.N, mb, r[0], r[0]*mb, r[1], r[1]*mb, r[2], r[0]/r[1])
	})
	fmt.Printf("BenchmarkUpload: load average at end %s\n", loadavg())
}

// ---------------------------------------------------------------------------
// Issue 5: upload-to-notification latency and dithers per second.

// BenchmarkDitherLatency measures, for a 1 MP PNG, the time from sending
// the upload until ditherCompleted of its automatic dither arrives over the
// websocket, one sample at a time (b.N samples): with the system idle, while
// 20 goroutines keep uploading without a dither (the API and the database
// loaded, the job queue not), and while 20 clients each upload and wait for
// their own dither (closed loop: up to 20 dithers queued ahead of a sample).
// The processors run with the default concurrency (GOMAXPROCS).
func BenchmarkDitherLatency(b *testing.B) {
	fmt.Printf("BenchmarkDitherLatency: load average at start %s\n", loadavg())
	e := start(b, server.Config{AutoDither: true, Logger: quietLogger()})
	comp := listen(b, e)
	c := newClient(e.http.URL)
	photo := photoPNG()
	var seq atomic.Int64
	type result struct{ p50, p99 time.Duration }
	results := map[string]result{}
	for _, mode := range []struct {
		name       string
		loaders    int
		withDither bool
	}{{"idle", 0, false}, {"load20-nodither", 20, false}, {"load20-dither", 20, true}} {
		b.Run(mode.name, func(b *testing.B) {
			ctx, stop := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			var loaded atomic.Int64
			for range mode.loaders {
				wg.Go(func() {
					for ctx.Err() == nil {
						id, _, err := c.upload(context.WithoutCancel(ctx), "load.png", withText(photo, seq.Add(1)), mode.withDither)
						if err == nil && mode.withDither {
							_, err = comp.wait(context.WithoutCancel(ctx), id)
						}
						if err != nil {
							b.Error(err)
							return
						}
						loaded.Add(1)
					}
				})
			}
			if mode.loaders > 0 {
				time.Sleep(2 * time.Second) // let the load settle
			}
			b.ResetTimer()
			t0 := time.Now()
			samples := make([]time.Duration, 0, b.N)
			for range b.N {
				d, err := sampleLatency(c, comp, withText(photo, seq.Add(1)))
				if err != nil {
					b.Fatal(err)
				}
				samples = append(samples, d)
			}
			elapsed := time.Since(t0)
			b.StopTimer()
			stop()
			wg.Wait() // the loaders' dithers are done: the queue is empty again
			slices.Sort(samples)
			r := result{percentile(samples, 0.50), percentile(samples, 0.99)}
			results[mode.name] = r
			b.ReportMetric(ms(r.p50), "p50-ms")
			b.ReportMetric(ms(r.p99), "p99-ms")
			if mode.loaders > 0 {
				b.ReportMetric(float64(loaded.Load())/elapsed.Seconds(), "load-uploads/s")
			}
			b.ReportMetric(0, "ns/op")
		})
	}
	for _, name := range []string{"idle", "load20-nodither", "load20-dither"} {
		if r, ok := results[name]; ok {
			fmt.Printf("BenchmarkDitherLatency %-16s p50 %7.1f ms  p99 %7.1f ms\n", name, ms(r.p50), ms(r.p99))
		}
	}
	fmt.Printf("BenchmarkDitherLatency: load average at end %s\n", loadavg())
}

// sampleLatency uploads data and waits for its automatic dither's ditherCompleted.
func sampleLatency(c *client, comp *completions, data []byte) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	t0 := time.Now()
	id, _, err := c.upload(ctx, "sample.png", data, true)
	if err != nil {
		return 0, err
	}
	done, err := comp.wait(ctx, id)
	if err != nil {
		return 0, err
	}
	return done.at.Sub(t0), nil
}

// BenchmarkDitherThroughput runs two services on fresh schemas, with the
// processors' concurrency at 1 and at 2, and gives each b.N dither requests
// (default options: Floyd-Steinberg, 2 levels) of 1 MP PNGs uploaded
// beforehand, in 4 rounds that alternate between the services. A round is
// timed from its first request until every one of its dithers' ditherCompleted
// has arrived.
func BenchmarkDitherThroughput(b *testing.B) {
	fmt.Printf("BenchmarkDitherThroughput: load average at start %s\n", loadavg())
	photo := photoPNG()
	var seq atomic.Int64
	type side struct {
		conc int
		e    *env
		comp *completions
		c    *client
	}
	var sides []side
	for _, conc := range []int{1, 2} {
		e := start(b, server.Config{Processors: processors.Config{Concurrency: conc}, Logger: quietLogger()})
		sides = append(sides, side{conc, e, listen(b, e), newClient(e.http.URL)})
	}
	b.Run("1MP", func(b *testing.B) {
		const rounds = 4
		ctx := context.Background()
		spent := make([]time.Duration, len(sides))
		cpu := make([]time.Duration, len(sides))
		took := make([]time.Duration, len(sides)) // the processors' own measure: read, decode, dither, encode, store
		done := make([]int, len(sides))
		b.ResetTimer()
		for r := range rounds {
			n := b.N / rounds
			if r < b.N%rounds {
				n++
			}
			for k := range sides {
				i := k
				if r%2 == 1 {
					i = len(sides) - 1 - k
				}
				s := sides[i]
				b.StopTimer()
				ids := make([]string, n)
				for j := range n {
					res, err := s.e.srv.Commands().Upload(ctx, commands.UploadInput{
						Body: bytes.NewReader(withText(photo, seq.Add(1))), Filename: "photo.png", NoDither: true,
						Metadata: eventstore.Metadata{Actor: "bench"},
					})
					if err != nil {
						b.Fatal(err)
					}
					ids[j] = res.Image.ID.String()
				}
				b.StartTimer()
				cpu0, t0 := cpuTime(), time.Now()
				dithers := make([]string, n)
				for j, id := range ids {
					var err error
					if dithers[j], err = s.c.requestDither(ctx, id); err != nil {
						b.Fatal(err)
					}
				}
				for _, id := range dithers {
					a, err := s.comp.wait(ctx, id)
					if err != nil {
						b.Fatal(err)
					}
					took[i] += a.took
				}
				spent[i] += time.Since(t0)
				cpu[i] += cpuTime() - cpu0
				done[i] += n
			}
		}
		b.StopTimer()
		rate := make([]float64, len(sides))
		for i, s := range sides {
			rate[i] = float64(done[i]) / spent[i].Seconds()
			b.ReportMetric(rate[i], fmt.Sprintf("c%d-dithers/s", s.conc))
			if b.N < rounds {
				continue // the framework's trial run
			}
			fmt.Printf("BenchmarkDitherThroughput N=%d concurrency %d: %.1f dithers/s, %.0f ms per job (processor's durationMs), %.2f cores busy in the Go process\n",
				b.N, s.conc, rate[i], ms(took[i])/float64(done[i]), cpu[i].Seconds()/spent[i].Seconds())
		}
		b.ReportMetric(rate[1]/rate[0], "c2/c1")
		b.ReportMetric(0, "ns/op")
		if b.N < rounds {
			return
		}
		fmt.Printf("BenchmarkDitherThroughput N=%d: concurrency 2 / concurrency 1 = %.2f (target >= 1.6)\n", b.N, rate[1]/rate[0])
	})
	fmt.Printf("BenchmarkDitherThroughput: load average at end %s\n", loadavg())
}

// completions follows ditherCompleted of every image over one
// graphql-transport-ws websocket, answering the server's pings.
type completions struct {
	mu      sync.Mutex
	arrived map[string]*arrival // by image id and by dither id
}

type arrival struct {
	done   chan struct{}
	at     time.Time
	took   time.Duration // the dither's durationMs
	status string
}

// listen subscribes to ditherCompleted of every image on e.
func listen(b *testing.B, e *env) *completions {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	url := "ws" + strings.TrimPrefix(e.http.URL, "http") + "/query"
	conn, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{Subprotocols: []string{"graphql-transport-ws"}})
	if err != nil {
		b.Fatal(err)
	}
	conn.SetReadLimit(1 << 20)
	b.Cleanup(func() { conn.Close(websocket.StatusNormalClosure, "") })
	before := e.srv.Hub().Subscribers()
	for _, m := range []any{
		map[string]any{"type": "connection_init", "payload": map[string]any{}},
		map[string]any{"id": "all", "type": "subscribe", "payload": map[string]any{
			"query": `subscription { ditherCompleted { id status durationMs image { id } } }`}},
	} {
		if err := wsjson.Write(ctx, conn, m); err != nil {
			b.Fatal(err)
		}
	}
	comp := &completions{arrived: map[string]*arrival{}}
	go comp.read(conn)
	eventually(b, "the subscription to open", func() bool { return e.srv.Hub().Subscribers() > before })
	return comp
}

func (c *completions) get(id string) *arrival {
	c.mu.Lock()
	defer c.mu.Unlock()
	a, ok := c.arrived[id]
	if !ok {
		a = &arrival{done: make(chan struct{})}
		c.arrived[id] = a
	}
	return a
}

func (c *completions) read(conn *websocket.Conn) {
	ctx := context.Background()
	for {
		var m wsMessage
		if err := wsjson.Read(ctx, conn, &m); err != nil {
			return
		}
		now := time.Now()
		switch m.Type {
		case "ping":
			_ = wsjson.Write(ctx, conn, map[string]any{"type": "pong"})
		case "next":
			var p struct {
				Data struct {
					DitherCompleted struct {
						ID, Status string
						DurationMs int64
						Image      struct{ ID string }
					}
				}
			}
			if err := json.Unmarshal(m.Payload, &p); err != nil {
				continue
			}
			d := p.Data.DitherCompleted
			for _, id := range []string{d.ID, d.Image.ID} {
				a := c.get(id)
				a.at, a.took, a.status = now, time.Duration(d.DurationMs)*time.Millisecond, d.Status
				close(a.done)
			}
		}
	}
}

// wait returns the arrival of the ditherCompleted of an image (its only
// dither) or of a dither; a dither that did not complete is an error.
func (c *completions) wait(ctx context.Context, id string) (*arrival, error) {
	a := c.get(id)
	select {
	case <-a.done:
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting for ditherCompleted of %s: %w", id, ctx.Err())
	}
	if a.status != "COMPLETED" {
		return nil, fmt.Errorf("dither of %s: status %s", id, a.status)
	}
	return a, nil
}

// ---------------------------------------------------------------------------
// Helpers.

// client talks to one service over HTTP, reporting errors instead of
// failing the test, so that it can be used from any goroutine.
type client struct {
	url string
	hc  *http.Client
}

func newClient(url string) *client {
	return &client{url: url, hc: &http.Client{Transport: &http.Transport{MaxIdleConns: 128, MaxIdleConnsPerHost: 128}}}
}

func gqlBody(query string, vars map[string]any) []byte {
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	return body
}

// query posts a GraphQL request and returns the response, which must be
// data without errors.
func (c *client) query(ctx context.Context, body []byte) ([]byte, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, c.url+"/query", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	return c.do(req)
}

func (c *client) do(req *http.Request) ([]byte, error) {
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK || !bytes.HasPrefix(raw, []byte(`{"data":`)) || bytes.Contains(raw, []byte(`"errors":`)) {
		return nil, fmt.Errorf("status %d: %.500s", resp.StatusCode, raw)
	}
	return raw, nil
}

const benchUploadMutation = `mutation ($input: UploadImageInput!) {
  uploadImage(input: $input) { image { id } dither { id } userErrors { field message code } } }`

// upload sends a multipart uploadImage and returns the image's id and its
// automatic dither's id, if any.
func (c *client) upload(ctx context.Context, filename string, data []byte, autoDither bool) (string, string, error) {
	input := map[string]any{"file": nil, "filename": filename, "autoDither": autoDither}
	ops, _ := json.Marshal(map[string]any{"query": benchUploadMutation, "variables": map[string]any{"input": input}})
	var buf bytes.Buffer
	buf.Grow(len(data) + 1024)
	w := multipart.NewWriter(&buf)
	_ = w.WriteField("operations", string(ops))
	_ = w.WriteField("map", `{"0": ["variables.input.file"]}`)
	fw, _ := w.CreateFormFile("0", filename)
	_, _ = fw.Write(data)
	_ = w.Close()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, c.url+"/query", &buf)
	req.Header.Set("Content-Type", w.FormDataContentType())
	req.Header.Set("GraphQL-Require-Preflight", "1")
	raw, err := c.do(req)
	if err != nil {
		return "", "", err
	}
	var r struct {
		Data struct {
			UploadImage struct {
				Image      *struct{ ID string }
				Dither     *struct{ ID string }
				UserErrors []userError
			}
		}
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		return "", "", err
	}
	u := r.Data.UploadImage
	if u.Image == nil || len(u.UserErrors) > 0 || autoDither != (u.Dither != nil) {
		return "", "", fmt.Errorf("upload refused: %s", raw)
	}
	if u.Dither == nil {
		return u.Image.ID, "", nil
	}
	return u.Image.ID, u.Dither.ID, nil
}

// requestDither asks for a dither with the default options and returns its id.
func (c *client) requestDither(ctx context.Context, imageID string) (string, error) {
	raw, err := c.query(ctx, gqlBody(`mutation ($id: ID!) { requestDither(input: {imageId: $id}) { dither { id } userErrors { code message } } }`,
		map[string]any{"id": imageID}))
	if err != nil {
		return "", err
	}
	var r struct {
		Data struct {
			RequestDither struct {
				Dither     *struct{ ID string }
				UserErrors []userError
			}
		}
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		return "", err
	}
	if r.Data.RequestDither.Dither == nil {
		return "", errors.New("requestDither refused: " + string(raw))
	}
	return r.Data.RequestDither.Dither.ID, nil
}

var (
	photoOnce sync.Once
	photo     []byte
)

// photoPNG returns a deterministic photo-like 1000x1000 (1 MP) PNG:
// gradients and waves plus noise, as the dither engine's benchmarks use.
func photoPNG() []byte {
	photoOnce.Do(func() {
		const w, h = 1000, 1000
		img := image.NewRGBA(image.Rect(0, 0, w, h))
		var s uint32 = 1
		for y := range h {
			for x := range w {
				s = s*1664525 + 1013904223
				n := float64(s>>24) / 16
				fx, fy := float64(x)/w, float64(y)/h
				i := img.PixOffset(x, y)
				img.Pix[i] = clamp(255*fx + 30*math.Sin(9*fy) + n - 8)
				img.Pix[i+1] = clamp(255*fy + 40*math.Cos(7*fx) + n - 8)
				img.Pix[i+2] = clamp(128 + 100*math.Sin(5*fx+3*fy) + n - 8)
				img.Pix[i+3] = 255
			}
		}
		var buf bytes.Buffer
		if err := png.Encode(&buf, img); err != nil {
			panic(err)
		}
		photo = buf.Bytes()
	})
	return photo
}

func clamp(v float64) uint8 { return uint8(min(max(v, 0), 255)) }

// withText returns the PNG with a tEXt chunk holding n before its IEND
// chunk: a file of its own (its own sha256 and blob) with the same pixels.
func withText(p []byte, n int64) []byte {
	iend := len(p) - 12
	data := append([]byte("bench\x00"), strconv.FormatInt(n, 10)...)
	out := make([]byte, 0, len(p)+12+len(data))
	out = append(out, p[:iend]...)
	out = binary.BigEndian.AppendUint32(out, uint32(len(data)))
	chunk := append([]byte("tEXt"), data...)
	out = append(out, chunk...)
	out = binary.BigEndian.AppendUint32(out, crc32.ChecksumIEEE(chunk))
	return append(out, p[iend:]...)
}

// percentile returns the nearest-rank percentile of sorted samples.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// loadavg returns the 1, 5 and 15 minute load averages.
func loadavg() string {
	raw, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(raw))
	return strings.Join(f[:min(3, len(f))], " ")
}

// cpuTime returns the user and system CPU time of the process.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// quietLogger logs warnings and errors only.
func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// TestWithText checks that the benchmarks' distinct files are valid PNGs
// with the same pixels.
func TestWithText(t *testing.T) {
	p := pngBytes(16, 9)
	a, b := withText(p, 1), withText(p, 2)
	if bytes.Equal(a, b) {
		t.Fatal("the files are the same")
	}
	for _, data := range [][]byte{a, b} {
		img, info, err := imagefile.Decode(bytes.NewReader(data), imagefile.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		if info.Width != 16 || info.Height != 9 || img.Bounds().Dx() != 16 {
			t.Fatalf("decoded %+v", info)
		}
	}
}
