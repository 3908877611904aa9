package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/imageservice/imageservice/internal/pgtest"
)

// childEnv marks the test binary started as the service itself;
// childLogEnv, when set, names the file the child appends its log to.
const (
	childEnv    = "IMAGESERVICE_TEST_CHILD"
	childLogEnv = "IMAGESERVICE_TEST_LOG"
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		var logs io.Writer = io.Discard
		if path := os.Getenv(childLogEnv); path != "" {
			f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
			logs = f
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		code := run(ctx, []string{"serve"}, os.Stdout, logs)
		stop()
		os.Exit(code)
	}
	if os.Getenv(natsChildEnv) != "" {
		os.Exit(runNATSChild())
	}
	os.Exit(m.Run())
}

// replica is the service running as a child process.
type replica struct {
	cmd  *exec.Cmd
	base string
}

// startReplica runs the service in a child process on the database URL
// and waits for its address. Writes are not rate limited: the tests
// send bursts of them from one address.
func startReplica(t *testing.T, dbURL string) *replica {
	t.Helper()
	return startChild(t, "", append(os.Environ(), "DATABASE_URL="+dbURL,
		"JOB_TIMEOUT=10s", "JOB_RESCUE_AFTER=12s", "DITHER_CONCURRENCY=2", "WRITE_RATE=0"))
}

// startChild runs the service in a child process with exactly the given
// environment (plus the child marker and a free port) in dir.
func startChild(t *testing.T, dir string, env []string) *replica {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Dir = dir
	cmd.Env = append(env, childEnv+"=1", "HTTP_ADDR=127.0.0.1:0")
	dieWithTest(cmd)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r := &replica{cmd: cmd}
	t.Cleanup(func() { r.kill() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("the replica printed no address: %v", err)
	}
	r.base = strings.Fields(line[strings.Index(line, "http://"):])[0]
	go io.Copy(io.Discard, out)
	return r
}

// kill ends the replica at once, as a crash would.
func (r *replica) kill() {
	if r.cmd.ProcessState == nil {
		_ = r.cmd.Process.Signal(syscall.SIGKILL)
		_ = r.cmd.Wait()
	}
}

// graphql posts a query to the replica.
func (r *replica) graphql(t *testing.T, query string, vars map[string]any, out any) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	resp, err := http.Post(r.base+"/query", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var res struct {
		Data   json.RawMessage
		Errors []any
	}
	if err := json.NewDecoder(resp.Body).Decode(&res); err != nil || len(res.Errors) > 0 {
		t.Fatalf("graphql: %v %v", err, res.Errors)
	}
	if err := json.Unmarshal(res.Data, out); err != nil {
		t.Fatal(err)
	}
}

// upload sends a generated image as a GraphQL multipart upload, without
// the automatic dither, and returns its id.
func (r *replica) upload(t *testing.T, w, h int) string {
	t.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.NRGBA{uint8(x), uint8(y), uint8(x ^ y), 255})
		}
	}
	var file bytes.Buffer
	_ = png.Encode(&file, img)
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	_ = mw.WriteField("operations", `{"query":"mutation ($f: Upload!) { uploadImage(input: {file: $f, autoDither: false}) { image { id } userErrors { code } } }","variables":{"f":null}}`)
	_ = mw.WriteField("map", `{"0":["variables.f"]}`)
	fw, _ := mw.CreateFormFile("0", "big.png")
	_, _ = fw.Write(file.Bytes())
	_ = mw.Close()
	req, err := http.NewRequest(http.MethodPost, r.base+"/query", &body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("GraphQL-Require-Preflight", "1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var res struct {
		Data struct {
			UploadImage struct{ Image struct{ ID string } }
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&res); err != nil || res.Data.UploadImage.Image.ID == "" {
		t.Fatalf("upload: %v %+v", err, res)
	}
	return res.Data.UploadImage.Image.ID
}

// requestDithers asks for n dithers of an image and returns their ids.
func (r *replica) requestDithers(t *testing.T, imageID string, n int) []string {
	t.Helper()
	var ids []string
	for i := range n {
		var res struct {
			RequestDither struct{ Dither struct{ ID string } }
		}
		r.graphql(t, `mutation ($id: ID!, $levels: Int!) { requestDither(input: {imageId: $id, levels: $levels, algorithm: JARVIS_JUDICE_NINKE}) { dither { id } } }`,
			map[string]any{"id": imageID, "levels": 2 + i%6}, &res)
		ids = append(ids, res.RequestDither.Dither.ID)
	}
	return ids
}

// outcomes counts, per dither, the outcome events in the log, and checks
// that every completed dither's result is stored.
func outcomes(t *testing.T, dbURL string) (map[string]int, int) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT e.data->>'dither_id', count(b.key) FROM events e
		LEFT JOIN blobs b ON b.key = e.data->>'result_sha256'
		WHERE e.event_type IN ('DitherCompleted', 'DitherFailed') GROUP BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	counts := map[string]int{}
	stored := 0
	for rows.Next() {
		var id string
		var blobs int
		if err := rows.Scan(&id, &blobs); err != nil {
			t.Fatal(err)
		}
		counts[id]++
		stored += blobs
	}
	return counts, stored
}

// waitOutcomes waits until at least n dithers have an outcome.
func waitOutcomes(t *testing.T, dbURL string, n int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		counts, _ := outcomes(t, dbURL)
		if len(counts) >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d dithers have an outcome after %s", len(counts), n, within)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// checkExactlyOnce checks that every dither ended in exactly one
// completion whose result is stored.
func checkExactlyOnce(t *testing.T, dbURL string, ids []string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, id := range ids {
		var completed, failed, stored int
		err := conn.QueryRow(ctx, `SELECT
			count(*) FILTER (WHERE e.event_type = 'DitherCompleted'),
			count(*) FILTER (WHERE e.event_type = 'DitherFailed'),
			count(b.key)
			FROM events e LEFT JOIN blobs b ON b.key = e.data->>'result_sha256'
			WHERE e.data->>'dither_id' = $1 AND e.event_type IN ('DitherCompleted', 'DitherFailed')`, id).Scan(&completed, &failed, &stored)
		if err != nil {
			t.Fatal(err)
		}
		if completed != 1 || failed != 0 || stored != 1 {
			t.Errorf("dither %s: %d completions, %d failures, %d stored results; want exactly one stored completion", id, completed, failed, stored)
		}
	}
}

// Crash: 50 dither requests, the service SIGKILLed twice mid-work and
// restarted: every request ends with exactly one DitherCompleted whose
// result is stored.
func TestCrashMidWork(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and kills the service several times")
	}
	dbURL, _ := pgtest.URL(t)
	r := startReplica(t, dbURL)
	imageID := r.upload(t, 320, 240)
	ids := r.requestDithers(t, imageID, 50)
	for kill := 1; kill <= 2; kill++ {
		done, _ := outcomes(t, dbURL)
		waitOutcomes(t, dbURL, len(done)+3, 3*time.Minute) // mid-work
		r.kill()
		t.Logf("killed the service after %d outcomes", len(done)+3)
		r = startReplica(t, dbURL)
	}
	waitOutcomes(t, dbURL, len(ids), 5*time.Minute)
	checkExactlyOnce(t, dbURL, ids)
	var res struct {
		Image struct {
			Dithers struct {
				Edges []struct{ Node struct{ Status string } }
			}
		}
	}
	r.graphql(t, `query ($id: ID!) { image(id: $id) { dithers(first: 100) { edges { node { status } } } } }`, map[string]any{"id": imageID}, &res)
	if n := len(res.Image.Dithers.Edges); n != 50 {
		t.Fatalf("the image has %d dithers, want 50", n)
	}
}

// Two replicas on one database share the work: every dither is done
// once, by either.
func TestTwoReplicas(t *testing.T) {
	if testing.Short() {
		t.Skip("runs two services")
	}
	dbURL, _ := pgtest.URL(t)
	a := startReplica(t, dbURL)
	b := startReplica(t, dbURL)
	imageID := a.upload(t, 320, 240)
	ids := append(a.requestDithers(t, imageID, 15), b.requestDithers(t, imageID, 15)...)
	waitOutcomes(t, dbURL, len(ids), 5*time.Minute)
	checkExactlyOnce(t, dbURL, ids)
}

// stop ends the replica gracefully (SIGTERM) and waits for it.
func (r *replica) stop(t *testing.T) {
	t.Helper()
	if err := r.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := r.cmd.Wait(); err != nil {
		t.Fatalf("the service did not stop cleanly: %v", err)
	}
}

// The embedded default: the binary with an empty environment in an empty
// directory serves, dithers, and after a restart still has everything.
func TestEmbeddedDefault(t *testing.T) {
	dir := t.TempDir()
	r := startChild(t, dir, nil)
	imageID := r.upload(t, 64, 48)
	ditherIDs := r.requestDithers(t, imageID, 2)
	type imageQ struct {
		Image struct {
			Version int
			Dithers struct {
				Edges []struct{ Node struct{ ID, Status string } }
			}
		}
	}
	query := `query ($id: ID!) { image(id: $id) { version dithers { edges { node { id status } } } } }`
	deadline := time.Now().Add(time.Minute)
	for {
		var q imageQ
		r.graphql(t, query, map[string]any{"id": imageID}, &q)
		done := len(q.Image.Dithers.Edges) == 2
		for _, e := range q.Image.Dithers.Edges {
			done = done && e.Node.Status == "COMPLETED"
		}
		if done {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("dithers not completed: %+v", q)
		}
		time.Sleep(50 * time.Millisecond)
	}
	r.stop(t)
	for _, f := range []string{"data/imageservice.db", "data/blobs"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Fatalf("the embedded default did not keep %s: %v", f, err)
		}
	}
	r = startChild(t, dir, nil)
	var q imageQ
	r.graphql(t, query, map[string]any{"id": imageID}, &q)
	if q.Image.Version != 5 || len(q.Image.Dithers.Edges) != 2 || q.Image.Dithers.Edges[0].Node.ID != ditherIDs[0] {
		t.Fatalf("after a restart: %+v", q)
	}
	for _, e := range q.Image.Dithers.Edges {
		if e.Node.Status != "COMPLETED" {
			t.Fatalf("after a restart: %+v", q)
		}
	}

	// Notifications cannot be sent here: asking for one is refused.
	var refused struct {
		RequestDither struct{ UserErrors []struct{ Code string } }
	}
	r.graphql(t, `mutation ($id: ID!) { requestDither(input: {imageId: $id, notify: {email: "a@example.com"}}) { userErrors { code } } }`,
		map[string]any{"id": imageID}, &refused)
	if ue := refused.RequestDither.UserErrors; len(ue) != 1 || ue[0].Code != "NOTIFICATIONS_UNAVAILABLE" {
		t.Fatalf("a notification on the embedded default: %+v", ue)
	}
	r.stop(t)

	// The admin commands work on the embedded default too.
	t.Chdir(dir)
	t.Setenv("DATABASE_URL", "")
	t.Setenv("POSTGRES_HOST", "")
	var out, errs strings.Builder
	if code := run(context.Background(), []string{"events", "--image", imageID}, &out, &errs); code != 0 ||
		strings.Count(out.String(), "\n") != 5 {
		t.Fatalf("events: %d %q %s", code, out.String(), errs.String())
	}
	// The log holds the image's 5 events, and the blob sweeper's marker if
	// it swept before the replica stopped: replay replays them all.
	var all strings.Builder
	if code := run(context.Background(), []string{"events"}, &all, &errs); code != 0 {
		t.Fatalf("events: %d %s", code, errs.String())
	}
	total := strings.Count(all.String(), "\n")
	if code := run(context.Background(), []string{"replay"}, io.Discard, &errs); code != 0 || total < 5 ||
		!strings.Contains(errs.String(), fmt.Sprintf("%d events replayed", total)) {
		t.Fatalf("replay of %d events: %d %s", total, code, errs.String())
	}

	// Once the image is deleted, its original is no longer served.
	r = startChild(t, dir, nil)
	var img struct{ Image struct{ Sha256 string } }
	r.graphql(t, `query ($id: ID!) { image(id: $id) { sha256 } }`, map[string]any{"id": imageID}, &img)
	original := r.base + "/blobs/" + img.Image.Sha256
	if status, _ := get(t, original); status != http.StatusOK {
		t.Fatalf("GET the original: %d", status)
	}
	var deleted struct {
		DeleteImage struct{ DeletedImageID string }
	}
	r.graphql(t, `mutation ($id: ID!) { deleteImage(input: {id: $id}) { deletedImageId } }`, map[string]any{"id": imageID}, &deleted)
	eventually(t, "the deleted image's original to be withdrawn", time.Minute, func() (bool, string) {
		status, _ := get(t, original)
		return status == http.StatusNotFound, fmt.Sprintf("GET the original: %d", status)
	})
}
