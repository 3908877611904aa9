package main

// Fault tests (issue 9): the real service, as a child process, under a
// load of idempotent mutations while its process, its database or its
// broker is killed. Each test checks a ledger afterwards instead of
// timings: every deadline below is a generous upper bound.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/imageservice/imageservice/internal/pgtest"
)

// faultSeedEnv, when set, replays a fault schedule that a failed run logged.
const faultSeedEnv = "IMAGESERVICE_FAULT_SEED"

// faultRand returns the seeded source of a test's random fault schedule
// and logs the seed, so that a failure can be reproduced.
func faultRand(t *testing.T) *rand.Rand {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv(faultSeedEnv); v != "" {
		s, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("%s=%q: %v", faultSeedEnv, v, err)
		}
		seed = s
	}
	t.Logf("fault schedule seed %d (rerun it with %s=%d)", seed, faultSeedEnv, seed)
	return rand.New(rand.NewPCG(seed, seed>>32|1))
}

// faultEnv is the child service's environment in the fault tests; the
// service appends its log to logPath.
func faultEnv(dbURL, logPath string, extra ...string) []string {
	return append(os.Environ(), append([]string{
		"DATABASE_URL=" + dbURL, "WRITE_RATE=0", "DITHER_CONCURRENCY=2",
		"JOB_TIMEOUT=5s", "JOB_RESCUE_AFTER=6s", childLogEnv + "=" + logPath,
	}, extra...)...)
}

// failedPublishes reads from the service's /metrics how many batches the
// bridge to sink failed to publish.
func failedPublishes(base, sink string) (int, error) {
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	series := `imageservice_bridge_publish_duration_seconds_count{outcome="error",sink="` + sink + `"} `
	for line := range strings.Lines(string(body)) {
		if v, ok := strings.CutPrefix(line, series); ok {
			return strconv.Atoi(strings.TrimSpace(v))
		}
	}
	return 0, nil
}

// runLoad runs clients (their keys start with the phase's name) that each
// do rounds of an upload and dithers further dither requests, and returns
// a channel closed when all are done.
func runLoad(g *loadGen, phase string, clients, rounds, dithers int) <-chan struct{} {
	done := make(chan struct{})
	var wg sync.WaitGroup
	for c := range clients {
		wg.Go(func() { g.run(fmt.Sprintf("%s%d", phase, c), rounds, dithers) })
	}
	go func() { wg.Wait(); close(done) }()
	return done
}

// sentKeys returns every idempotency key a client sent.
func (g *loadGen) sentKeys() map[string]bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make(map[string]bool, len(g.sent))
	for k := range g.sent {
		out[k] = true
	}
	return out
}

// SIGKILL under load: clients upload and request dithers, each mutation
// retried with its idempotency key until acknowledged, while the service
// is SIGKILLed ten times at random moments and started again. Afterwards
// every acknowledged mutation wrote its events exactly once, every dither
// has exactly one outcome, and every event reached the broker once.
func TestKillUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("kills and restarts the service ten times under load")
	}
	t.Parallel()
	dbURL, _ := pgtest.URL(t)
	rng := faultRand(t)
	broker := startNATSProc(t)
	env := faultEnv(dbURL, childLog(t), "NATS_URL="+broker.url(), "NATS_DUPLICATE_WINDOW=1h")
	r := startChild(t, "", env)
	g := newLoadGen(t, r.base, 4*time.Minute)

	const clients, rounds, dithers, kills = 4, 25, 2, 10
	total := int64(clients * rounds * (1 + dithers))
	done := runLoad(g, "c", clients, rounds, dithers)
	// Kill k comes at a random count of acknowledged mutations in the
	// k-th of ten slots spanning the first 5/6 of the load, plus a random
	// pause so that it lands anywhere within a request.
	slot := total * 5 / 6 / kills
	for k := range int64(kills) {
		at := k*slot + rng.Int64N(slot)
		pause := time.Duration(rng.Int64N(int64(100 * time.Millisecond)))
		if !g.waitAcked(at, done) {
			t.Fatalf("the load stopped after %d acknowledged mutations, before kill %d", g.ackedN.Load(), k+1)
		}
		time.Sleep(pause)
		r.kill()
		t.Logf("kill %d: SIGKILL at %d acknowledged mutations (scheduled at %d + %s)", k+1, g.ackedN.Load(), at, pause)
		r = startChild(t, "", env)
		g.setBase(r.base)
	}
	<-done
	if t.Failed() {
		return
	}
	if n := g.ackedN.Load(); n != total {
		t.Fatalf("%d of %d mutations acknowledged", n, total)
	}
	t.Logf("%d mutations acknowledged; %d failed attempts were retried with their keys", total, g.failures.Load())
	checkIdempotency(t, readLog(t, dbURL), g.acknowledged(), g.sentKeys())
	checkOutcomes(t, dbURL, 3*time.Minute)
	checkBroker(t, dbURL, broker.url(), 2*time.Minute)
}

// readiness is the /readyz answer.
type readiness struct {
	code   int
	Status string
	Reason string
	Checks map[string]string
}

// readyz asks the service whether it is ready.
func readyz(base string) (readiness, error) {
	resp, err := http.Get(base + "/readyz")
	if err != nil {
		return readiness{}, err
	}
	defer resp.Body.Close()
	rd := readiness{code: resp.StatusCode}
	if err := json.NewDecoder(resp.Body).Decode(&rd); err != nil {
		return rd, fmt.Errorf("decode /readyz: %w", err)
	}
	return rd, nil
}

// waitReady waits until /readyz answers code with the checks holding
// these values.
func waitReady(t *testing.T, base string, code int, checks map[string]string) {
	t.Helper()
	eventually(t, fmt.Sprintf("/readyz answers %d with %v", code, checks), time.Minute, func() (bool, string) {
		rd, err := readyz(base)
		if err != nil || rd.code != code {
			return false, fmt.Sprintf("%+v %v", rd, err)
		}
		for k, v := range checks {
			if rd.Checks[k] != v {
				return false, fmt.Sprintf("%+v", rd)
			}
		}
		return true, ""
	})
}

// sseFeed is a GraphQL subscription to an image's events over SSE.
type sseFeed struct {
	mu       sync.Mutex
	versions []int
	err      error
}

// subscribeImageEvents opens imageEvents(imageId) over SSE and collects
// the stream versions of the events it delivers until the test ends.
func subscribeImageEvents(t *testing.T, base, imageID string) *sseFeed {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"query": `subscription ($id: ID!) { imageEvents(imageId: $id) { type streamVersion } }`,
		"variables": map[string]any{"id": imageID}})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/query", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("open the subscription: %v", err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("open the subscription: %s", resp.Status)
	}
	f := &sseFeed{}
	go func() {
		defer resp.Body.Close()
		lines := bufio.NewScanner(resp.Body)
		for lines.Scan() {
			data, ok := strings.CutPrefix(lines.Text(), "data: ")
			if !ok || strings.TrimSpace(data) == "" {
				continue
			}
			var p struct {
				Data struct {
					ImageEvents *struct{ StreamVersion int }
				}
				Errors []any
			}
			err := json.Unmarshal([]byte(data), &p)
			f.mu.Lock()
			switch {
			case err != nil:
				f.err = fmt.Errorf("SSE data %q: %w", data, err)
			case len(p.Errors) > 0 || p.Data.ImageEvents == nil:
				f.err = fmt.Errorf("SSE data %q", data)
			default:
				f.versions = append(f.versions, p.Data.ImageEvents.StreamVersion)
			}
			f.mu.Unlock()
		}
		f.mu.Lock()
		if f.err == nil && ctx.Err() == nil {
			f.err = fmt.Errorf("the subscription ended: %v", lines.Err())
		}
		f.mu.Unlock()
	}()
	return f
}

// state returns the versions delivered so far and the feed's error.
func (f *sseFeed) state() ([]int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]int(nil), f.versions...), f.err
}

// pgxQueryRow runs a one-row query on a new connection.
func pgxQueryRow(dbURL, sql string, dest ...any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	return conn.QueryRow(ctx, sql).Scan(dest...)
}

// query runs a GraphQL query; unlike replica.graphql it returns its
// failure, for callers that wait for the service to recover.
func query(base, q string, vars map[string]any, out any) error {
	body, _ := json.Marshal(map[string]any{"query": q, "variables": vars})
	resp, err := http.Post(base+"/query", "application/json", bytes.NewReader(body))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var res struct {
		Data   json.RawMessage
		Errors []any
	}
	if err := json.NewDecoder(resp.Body).Decode(&res); err != nil {
		return fmt.Errorf("%s: %w", resp.Status, err)
	}
	if len(res.Errors) > 0 {
		return fmt.Errorf("graphql errors: %v", res.Errors)
	}
	return json.Unmarshal(res.Data, out)
}

// ditherStatuses reads, through the API, the status of every acknowledged
// upload's dither ("" when the image or the dither cannot be read).
func ditherStatuses(base string, uploads []mutation) (map[string]string, error) {
	out := map[string]string{}
	const perQuery = 25 // the API allows 30 aliases
	for start := 0; start < len(uploads); start += perQuery {
		batch := uploads[start:min(start+perQuery, len(uploads))]
		var q strings.Builder
		q.WriteString("query {")
		for i, m := range batch {
			fmt.Fprintf(&q, " i%d: image(id: %q) { dithers(first: 10) { edges { node { id status } } } }", i, m.ImageID)
		}
		q.WriteString(" }")
		var res map[string]*struct {
			Dithers struct {
				Edges []struct{ Node struct{ ID, Status string } }
			}
		}
		if err := query(base, q.String(), nil, &res); err != nil {
			return nil, err
		}
		for i, m := range batch {
			out[m.Key] = ""
			if img := res[fmt.Sprintf("i%d", i)]; img != nil {
				for _, e := range img.Dithers.Edges {
					if e.Node.ID == m.DitherID {
						out[m.Key] = e.Node.Status
					}
				}
			}
		}
	}
	return out, nil
}

// PostgreSQL crash under load: the database of the test's own is stopped
// with -m immediate and started again while clients upload. The same
// service process recovers by itself (its pool reconnects, its listener
// listens again, the job queue and the subscriptions resume), an open
// subscription goes on delivering every event, and nothing acknowledged
// is lost: every acknowledged upload is readable and its dither completed.
func TestPostgresCrashUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("crashes a PostgreSQL cluster under load")
	}
	t.Parallel()
	pg := startPGCluster(t)
	dbURL := pg.url()
	r := startChild(t, "", faultEnv(dbURL, childLog(t)))
	g := newLoadGen(t, r.base, 4*time.Minute)

	// A subscription opened before the crash, to an image that gets
	// dithers before, during and after it.
	probe, ok := g.upload("probe", 0)
	if !ok {
		t.FailNow()
	}
	feed := subscribeImageEvents(t, r.base, probe.ImageID)
	asked := 0
	eventually(t, "the subscription delivers", time.Minute, func() (bool, string) {
		if v, err := feed.state(); len(v) > 0 || err != nil {
			return true, ""
		}
		asked++
		g.requestDither(probe.ImageID, fmt.Sprintf("probe-%d", asked), 2)
		return false, fmt.Sprintf("nothing after %d dither requests", asked)
	})

	const clients, rounds = 4, 15
	done := runLoad(g, "c", clients, rounds, 0)
	probeDone := make(chan struct{})
	go func() {
		defer close(probeDone)
		for i := range 20 {
			if _, ok := g.requestDither(probe.ImageID, fmt.Sprintf("probe-load-%d", i), 2+i%6); !ok {
				return
			}
		}
	}()
	if !g.waitAcked(25, done) {
		t.Fatalf("the load stopped after %d acknowledged mutations", g.ackedN.Load())
	}
	pg.crash()
	failed := g.failures.Load()
	t.Logf("PostgreSQL stopped (-m immediate) at %d acknowledged mutations", g.ackedN.Load())
	waitReady(t, r.base, http.StatusServiceUnavailable, map[string]string{"database": "down"})
	eventually(t, "clients fail while the database is down", time.Minute, func() (bool, string) {
		return g.failures.Load() > failed, "no failed attempt yet"
	})
	pg.start()
	t.Logf("PostgreSQL started again at %d acknowledged mutations", g.ackedN.Load())
	<-done
	<-probeDone
	if t.Failed() {
		return
	}
	t.Logf("%d mutations acknowledged; %d failed attempts were retried with their keys", g.ackedN.Load(), g.failures.Load())
	// The same process serves again: the address still answers, ready.
	waitReady(t, r.base, http.StatusOK, map[string]string{"database": "up", "migrations": "up"})
	// Its event store listens for other processes' appends again (every
	// session is new since the restart; a listening one's last statement
	// is its LISTEN).
	eventually(t, "the event store LISTENs again", time.Minute, func() (bool, string) {
		var n int
		err := pgxQueryRow(dbURL, `SELECT count(*) FROM pg_stat_activity WHERE query ILIKE 'listen %eventstore%'`, &n)
		return err == nil && n > 0, fmt.Sprintf("%d listening sessions (%v)", n, err)
	})

	var uploads []mutation
	for _, m := range g.acknowledged() {
		if m.Kind == "upload" {
			uploads = append(uploads, m)
		}
	}
	if len(uploads) != clients*rounds+1 {
		t.Fatalf("%d uploads acknowledged, want %d", len(uploads), clients*rounds+1)
	}
	eventually(t, "every acknowledged upload is readable with its dither completed", 3*time.Minute, func() (bool, string) {
		statuses, err := ditherStatuses(r.base, uploads)
		if err != nil {
			return false, err.Error()
		}
		var notDone []string
		for _, m := range uploads {
			if s := statuses[m.Key]; s != "COMPLETED" {
				notDone = append(notDone, m.Key+"="+s)
			}
		}
		return len(notDone) == 0, fmt.Sprintf("%d not completed: %v", len(notDone), notDone[:min(len(notDone), 10)])
	})
	checkIdempotency(t, readLog(t, dbURL), g.acknowledged(), g.sentKeys())
	checkOutcomes(t, dbURL, time.Minute)

	// The subscription opened before the crash delivered every event of
	// the probe image since it began, in order, none twice.
	var final int
	if err := pgxQueryRow(dbURL, `SELECT max(stream_version) FROM events WHERE stream_id = 'image-`+probe.ImageID+`'`, &final); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the subscription delivers every event of the probe image", time.Minute, func() (bool, string) {
		v, err := feed.state()
		return err != nil || (len(v) > 0 && v[len(v)-1] >= final), fmt.Sprintf("versions %v, want up to %d", v, final)
	})
	versions, err := feed.state()
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i < len(versions); i++ {
		if versions[i] != versions[i-1]+1 {
			t.Fatalf("the subscription delivered versions %v: a gap or a repeat after %d", versions, versions[i-1])
		}
	}
}

// NATS crash: the broker is SIGKILLed while the service keeps taking
// mutations, and started again on the same store. /readyz shows the
// broker down (still 200: the API works) and up again, and the bridge
// catches up: every event of the log is in the stream exactly once.
func TestNATSCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("kills a NATS server under load")
	}
	t.Parallel()
	dbURL, _ := pgtest.URL(t)
	broker := startNATSProc(t)
	r := startChild(t, "", faultEnv(dbURL, childLog(t), "NATS_URL="+broker.url(), "NATS_DUPLICATE_WINDOW=1h"))
	g := newLoadGen(t, r.base, 3*time.Minute)
	waitReady(t, r.base, http.StatusOK, map[string]string{"database": "up", "migrations": "up", "nats": "up"})

	<-runLoad(g, "before", 2, 5, 1)
	checkOutcomes(t, dbURL, 2*time.Minute)
	checkBroker(t, dbURL, broker.url(), 2*time.Minute)
	if t.Failed() {
		return
	}

	broker.kill()
	t.Logf("NATS killed at %d acknowledged mutations", g.ackedN.Load())
	waitReady(t, r.base, http.StatusOK, map[string]string{"database": "up", "nats": "down"})
	// The API goes on while the broker is down; the bridge falls behind.
	before := g.ackedN.Load()
	done := runLoad(g, "during", 3, 6, 1)
	if !g.waitAcked(before+10, done) {
		t.Fatalf("the load stopped after %d acknowledged mutations", g.ackedN.Load())
	}
	// Down until a publish failed for good (its acknowledgements timed
	// out), so the bridge retries from its checkpoint once NATS is back,
	// while the NATS client also sends what it buffered meanwhile: the
	// stream must drop the repeats.
	eventually(t, "the bridge reports a failed publish", time.Minute, func() (bool, string) {
		n, err := failedPublishes(r.base, "nats")
		return n > 0, fmt.Sprintf("%d failed batches in /metrics (%v)", n, err)
	})
	broker.start()
	t.Logf("NATS started again at %d acknowledged mutations", g.ackedN.Load())
	<-done
	if t.Failed() {
		return
	}
	waitReady(t, r.base, http.StatusOK, map[string]string{"database": "up", "nats": "up"})
	checkOutcomes(t, dbURL, 2*time.Minute)
	checkIdempotency(t, readLog(t, dbURL), g.acknowledged(), g.sentKeys())
	checkBroker(t, dbURL, broker.url(), 2*time.Minute)
}
