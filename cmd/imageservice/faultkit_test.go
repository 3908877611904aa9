package main

// The fault tests' kit: a NATS server and a PostgreSQL cluster of the
// test's own, each a separate process that can be killed and started
// again; a load of mutations with idempotency keys, each retried with its
// key until the service acknowledges it; and the ledger checks that read
// the log and the broker afterwards.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"image"
	"image/color"
	"image/png"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/imageservice/imageservice/bridge"
	"github.com/imageservice/imageservice/internal/testnet"
)

// eventually polls cond until it holds, failing the test with cond's last
// word on the state when within passes. within is a generous upper bound,
// never an expectation.
func eventually(t *testing.T, what string, within time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not so after %s: %s", what, within, state)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// childLog gives a child service a log file and, when the test fails,
// shows the file's last lines.
func childLog(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "service.log")
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		data, _ := os.ReadFile(path)
		lines := strings.Split(strings.TrimSpace(string(data)), "\n")
		lines = lines[max(len(lines)-80, 0):]
		for i, l := range lines {
			if len(l) > 500 {
				lines[i] = l[:500] + "..."
			}
		}
		t.Logf("the service's last log lines:\n%s", strings.Join(lines, "\n"))
	})
	return path
}

// ---- NATS ----

// natsChildEnv marks the test binary started as a NATS server with
// JetStream; its value is the store directory, and natsPortEnv the port.
const (
	natsChildEnv = "IMAGESERVICE_TEST_NATS"
	natsPortEnv  = "IMAGESERVICE_TEST_NATS_PORT"
)

// runNATSChild runs the NATS server of a natsProc until it is killed.
func runNATSChild() int {
	port, err := strconv.Atoi(os.Getenv(natsPortEnv))
	if err != nil {
		port = -1
	}
	srv, err := natsserver.NewServer(&natsserver.Options{
		Host: "127.0.0.1", Port: port, JetStream: true, StoreDir: os.Getenv(natsChildEnv),
		NoSigs: true, NoLog: true,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	go srv.Start()
	if !srv.ReadyForConnections(30 * time.Second) {
		fmt.Fprintln(os.Stderr, "NATS did not start")
		return 1
	}
	fmt.Printf("nats listening on port %d\n", srv.Addr().(*net.TCPAddr).Port)
	srv.WaitForShutdown()
	return 0
}

// natsProc is a NATS server with JetStream in a process of its own (the
// test binary started as one), so that it can be SIGKILLed like a real
// broker and started again on the same port and store.
type natsProc struct {
	t    *testing.T
	dir  string
	port int
	cmd  *exec.Cmd
}

// startNATSProc starts a NATS server on a free port and a new store.
func startNATSProc(t *testing.T) *natsProc {
	t.Helper()
	n := &natsProc{t: t, dir: t.TempDir(), port: -1}
	n.start()
	t.Cleanup(n.kill)
	return n
}

// start starts the server on n.port (a free one the first time) and waits
// until it accepts connections.
func (n *natsProc) start() {
	n.t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), natsChildEnv+"="+n.dir, natsPortEnv+"="+strconv.Itoa(n.port))
	dieWithTest(cmd)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		n.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		n.t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		_ = cmd.Wait()
		n.t.Fatalf("NATS did not start: %v: %s", err, stderr.String())
	}
	if _, err := fmt.Sscanf(line, "nats listening on port %d", &n.port); err != nil {
		n.t.Fatalf("NATS said %q: %v", line, err)
	}
	go io.Copy(io.Discard, out)
	n.cmd = cmd
}

// kill ends the server at once (SIGKILL), as a crash would.
func (n *natsProc) kill() {
	if n.cmd != nil {
		_ = n.cmd.Process.Signal(syscall.SIGKILL)
		_ = n.cmd.Wait()
		n.cmd = nil
	}
}

func (n *natsProc) url() string { return fmt.Sprintf("nats://127.0.0.1:%d", n.port) }

// streamMessage is one message of the bridge's stream, as the ledger
// needs it: its subject, Nats-Msg-Id and the id of the event it carries.
type streamMessage struct {
	Subject, MsgID, EventID string
}

// natsMessages reads every message of the bridge's stream, in order.
func natsMessages(t *testing.T, url string) []streamMessage {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatalf("connect to NATS: %v", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := js.Stream(ctx, bridge.DefaultNATSStream)
	if err != nil {
		t.Fatalf("the bridge's stream: %v", err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []streamMessage
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			t.Fatalf("message %d: %v", seq, err)
		}
		sm := streamMessage{Subject: m.Subject, MsgID: m.Header.Get(jetstream.MsgIDHeader), EventID: m.Header.Get("ce_id")}
		if m.Subject == bridge.DefaultEventsTopic {
			// A structured CloudEvent: the event id is in the body.
			var ce struct{ ID string }
			if err := json.Unmarshal(m.Data, &ce); err != nil {
				t.Fatalf("message %d on %s: %v", seq, m.Subject, err)
			}
			sm.EventID = ce.ID
		}
		out = append(out, sm)
	}
	return out
}

// natsEventsCount returns how many messages the stream holds on the events
// topic, or an error when the server or the stream does not answer.
func natsEventsCount(url string) (int, error) {
	nc, err := nats.Connect(url, nats.Timeout(2*time.Second))
	if err != nil {
		return 0, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, bridge.DefaultNATSStream)
	if err != nil {
		return 0, err
	}
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(bridge.DefaultEventsTopic))
	if err != nil {
		return 0, err
	}
	return int(info.State.Subjects[bridge.DefaultEventsTopic]), nil
}

// ---- PostgreSQL ----

// pgCluster is a PostgreSQL cluster of the test's own, which the test may
// stop and start: the shared one serves other packages' tests meanwhile.
type pgCluster struct {
	t    *testing.T
	bin  string // directory of initdb and pg_ctl
	dir  string // socket directory, log; data in dir/data
	port int
	// runAs runs the server as this user (initdb refuses root).
	runAs string
}

// startPGCluster creates a cluster in a temporary directory on a free port
// and starts it. It skips the test when PostgreSQL's server programs are
// not installed.
func startPGCluster(t *testing.T) *pgCluster {
	t.Helper()
	c := &pgCluster{t: t, bin: pgBinDir()}
	if c.bin == "" {
		t.Skip("PostgreSQL's server programs (initdb, pg_ctl) are not installed (looked in /usr/lib/postgresql/*/bin and PATH): skipping the PostgreSQL restart test")
	}
	c.dir = t.TempDir()
	if os.Geteuid() == 0 {
		// initdb refuses root: the cluster runs as postgres, in a directory
		// postgres can reach (t.TempDir's parents are private).
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Skip("running as root and there is no postgres user to run a private PostgreSQL cluster as")
		}
		if _, err := exec.LookPath("runuser"); err != nil {
			t.Skip("running as root and runuser is missing: cannot run a private PostgreSQL cluster as postgres")
		}
		c.runAs = u.Username
		dir, err := os.MkdirTemp("/tmp", "imageservice-pg-")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = os.RemoveAll(dir) })
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
		c.dir = dir
	}
	c.pg("initdb", "-D", c.data(), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
	// fsync off: the tests crash the server, never the machine, so what
	// was written survives in the page cache.
	conf := fmt.Sprintf("\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '%s'\n"+
		"fsync = off\nshared_buffers = 32MB\nmax_connections = 60\n", c.dir)
	f, err := os.OpenFile(filepath.Join(c.data(), "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err == nil {
		_, err = f.WriteString(conf)
		err = errors.Join(err, f.Close())
	}
	if err != nil {
		t.Fatalf("configure the cluster: %v", err)
	}
	// A free port, tried again when another process takes it first.
	for attempt := 1; ; attempt++ {
		c.port = testnet.FreePort(t)
		out, err := c.startOnce()
		if err == nil {
			break
		}
		if attempt == 3 || !strings.Contains(c.serverLog(), "could not bind") {
			t.Fatalf("start PostgreSQL on port %d: %v\n%s\n%s", c.port, err, out, c.serverLog())
		}
	}
	t.Cleanup(func() { c.pgQuiet("pg_ctl", "-D", c.data(), "-m", "immediate", "-w", "stop") })
	return c
}

// pgBinDir returns the directory of initdb and pg_ctl: the newest under
// /usr/lib/postgresql, else the one on PATH, else "".
func pgBinDir() string {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int {
		va, _ := strconv.Atoi(filepath.Base(filepath.Dir(a)))
		vb, _ := strconv.Atoi(filepath.Base(filepath.Dir(b)))
		return vb - va
	})
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p)
	}
	return ""
}

func (c *pgCluster) data() string { return filepath.Join(c.dir, "data") }

// command returns the command running prog, a program of the cluster's
// bin directory, as the cluster's user.
func (c *pgCluster) command(prog string, args ...string) *exec.Cmd {
	prog = filepath.Join(c.bin, prog)
	if c.runAs != "" {
		return exec.Command("runuser", append([]string{"-u", c.runAs, "--", prog}, args...)...)
	}
	return exec.Command(prog, args...)
}

// pg runs a program and fails the test when it fails.
func (c *pgCluster) pg(prog string, args ...string) {
	c.t.Helper()
	if out, err := c.command(prog, args...).CombinedOutput(); err != nil {
		c.t.Fatalf("%s %s: %v\n%s\n%s", prog, strings.Join(args, " "), err, out, c.serverLog())
	}
}

// pgQuiet runs a program, ignoring its failure (clean-up).
func (c *pgCluster) pgQuiet(prog string, args ...string) { _ = c.command(prog, args...).Run() }

// start starts the server on its port again and waits until it accepts
// connections.
func (c *pgCluster) start() {
	c.t.Helper()
	if out, err := c.startOnce(); err != nil {
		c.t.Fatalf("start PostgreSQL on port %d: %v\n%s\n%s", c.port, err, out, c.serverLog())
	}
}

// startOnce starts the server on c.port and waits until it accepts
// connections.
func (c *pgCluster) startOnce() ([]byte, error) {
	return c.command("pg_ctl", "-D", c.data(), "-l", filepath.Join(c.dir, "server.log"),
		"-o", fmt.Sprintf("-p %d", c.port), "-w", "-t", "120", "start").CombinedOutput()
}

// crash stops the server the way a crash would (-m immediate: no
// checkpoint, every connection cut; the next start recovers from the WAL).
func (c *pgCluster) crash() {
	c.t.Helper()
	c.pg("pg_ctl", "-D", c.data(), "-m", "immediate", "-w", "stop")
}

func (c *pgCluster) url() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres", c.port)
}

// serverLog returns the end of the server's log, for failure messages.
func (c *pgCluster) serverLog() string {
	data, _ := os.ReadFile(filepath.Join(c.dir, "server.log"))
	return string(data[max(len(data)-4000, 0):])
}

// ---- the load ----

// mutation is one acknowledged mutation.
type mutation struct {
	Key, Kind         string // Kind is "upload" or "dither"
	ImageID, DitherID string // DitherID: the requested dither, or the upload's own
}

// errRefused is a mutation the service refused with user errors: retrying
// it cannot help.
var errRefused = errors.New("refused")

// loadGen sends mutations, each with its own idempotency key, and retries
// each with the same key until the service acknowledges it, whatever
// happens to the service meanwhile.
type loadGen struct {
	t      *testing.T
	base   atomic.Pointer[string]
	client *http.Client
	giveUp time.Time

	mu    sync.Mutex
	acked map[string]mutation
	sent  map[string]bool

	ackedN   atomic.Int64 // acknowledged mutations
	failures atomic.Int64 // failed attempts (to be retried)
}

// newLoadGen returns a load generator on the service at base; it gives up
// on a mutation (failing the test) when within has passed.
func newLoadGen(t *testing.T, base string, within time.Duration) *loadGen {
	g := &loadGen{
		t: t, client: &http.Client{Timeout: 30 * time.Second}, giveUp: time.Now().Add(within),
		acked: map[string]mutation{}, sent: map[string]bool{},
	}
	g.setBase(base)
	t.Cleanup(g.client.CloseIdleConnections)
	return g
}

// setBase points the load at the service's new address.
func (g *loadGen) setBase(base string) { g.base.Store(&base) }

// run is one client, named by a prefix of its keys: rounds of an upload
// (with its automatic dither) followed by dithers further dither requests
// of the uploaded image. It stops at the first mutation it gives up on.
func (g *loadGen) run(client string, rounds, dithers int) {
	for r := range rounds {
		key := fmt.Sprintf("%s-u%d", client, r)
		up, ok := g.upload(key, int(crc32.ChecksumIEEE([]byte(key))))
		if !ok {
			return
		}
		for d := range dithers {
			if _, ok := g.requestDither(up.ImageID, fmt.Sprintf("%s-d%d", key, d), 2+d%6); !ok {
				return
			}
		}
	}
}

// acknowledged returns the acknowledged mutations.
func (g *loadGen) acknowledged() []mutation {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]mutation, 0, len(g.acked))
	for _, m := range g.acked {
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, b mutation) int { return strings.Compare(a.Key, b.Key) })
	return out
}

// upload uploads a 64x48 PNG made from seed, with the automatic dither,
// under key.
func (g *loadGen) upload(key string, seed int) (mutation, bool) {
	img := image.NewNRGBA(image.Rect(0, 0, 64, 48))
	for y := range 48 {
		for x := range 64 {
			img.Set(x, y, color.NRGBA{uint8(x*4 + seed), uint8(y * 5), uint8(seed * 7), 255})
		}
	}
	var file bytes.Buffer
	if err := png.Encode(&file, img); err != nil {
		g.t.Errorf("encode the upload %s: %v", key, err) // not Fatal: clients run in goroutines
		return mutation{}, false
	}
	ops, _ := json.Marshal(map[string]any{
		"query":     `mutation ($f: Upload!, $k: String) { uploadImage(input: {file: $f, idempotencyKey: $k}) { image { id } dither { id } userErrors { code message } } }`,
		"variables": map[string]any{"f": nil, "k": key},
	})
	return g.retry("upload", key, func(base string) (mutation, error) {
		var body bytes.Buffer
		mw := multipart.NewWriter(&body)
		_ = mw.WriteField("operations", string(ops))
		_ = mw.WriteField("map", `{"0":["variables.f"]}`)
		fw, _ := mw.CreateFormFile("0", key+".png")
		_, _ = fw.Write(file.Bytes())
		_ = mw.Close()
		req, err := http.NewRequest(http.MethodPost, base+"/query", &body)
		if err != nil {
			return mutation{}, err
		}
		req.Header.Set("Content-Type", mw.FormDataContentType())
		req.Header.Set("GraphQL-Require-Preflight", "1")
		p, err := g.mutate(req, "uploadImage")
		if err != nil {
			return mutation{}, err
		}
		if p.Image == nil || p.Dither == nil {
			return mutation{}, fmt.Errorf("no image or dither in the answer: %+v", p)
		}
		return mutation{Key: key, Kind: "upload", ImageID: p.Image.ID, DitherID: p.Dither.ID}, nil
	})
}

// requestDither asks for a dither of the image with the given levels under key.
func (g *loadGen) requestDither(imageID, key string, levels int) (mutation, bool) {
	q, _ := json.Marshal(map[string]any{
		"query":     `mutation ($id: ID!, $levels: Int!, $k: String) { requestDither(input: {imageId: $id, levels: $levels, algorithm: ATKINSON, idempotencyKey: $k}) { dither { id } userErrors { code message } } }`,
		"variables": map[string]any{"id": imageID, "levels": levels, "k": key},
	})
	return g.retry("dither", key, func(base string) (mutation, error) {
		req, err := http.NewRequest(http.MethodPost, base+"/query", bytes.NewReader(q))
		if err != nil {
			return mutation{}, err
		}
		req.Header.Set("Content-Type", "application/json")
		p, err := g.mutate(req, "requestDither")
		if err != nil {
			return mutation{}, err
		}
		if p.Dither == nil {
			return mutation{}, errors.New("no dither in the answer")
		}
		return mutation{Key: key, Kind: "dither", ImageID: imageID, DitherID: p.Dither.ID}, nil
	})
}

// mutationPayload is what the load's mutations answer.
type mutationPayload struct {
	Image, Dither *struct{ ID string }
	UserErrors    []struct{ Code, Message string }
}

// mutate sends a GraphQL mutation and returns the payload of field; user
// errors are errRefused (not to retry).
func (g *loadGen) mutate(req *http.Request, field string) (mutationPayload, error) {
	var data map[string]mutationPayload
	if err := g.do(req, &data); err != nil {
		return mutationPayload{}, err
	}
	p := data[field]
	if len(p.UserErrors) > 0 {
		return mutationPayload{}, fmt.Errorf("%w: %+v", errRefused, p.UserErrors)
	}
	return p, nil
}

// do sends a GraphQL request and decodes its data; a failed request, a
// status other than 200 or GraphQL errors are errors (to retry).
func (g *loadGen) do(req *http.Request, data any) error {
	resp, err := g.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %.200s", resp.Status, body)
	}
	var res struct {
		Data   json.RawMessage
		Errors []any
	}
	if err := json.Unmarshal(body, &res); err != nil {
		return fmt.Errorf("decode %.200s: %w", body, err)
	}
	if len(res.Errors) > 0 {
		return fmt.Errorf("graphql errors: %v", res.Errors)
	}
	return json.Unmarshal(res.Data, data)
}

// retry sends a mutation until the service acknowledges it, and records
// it. It fails the test (and returns false) when the service refuses it
// or the load's time is up.
func (g *loadGen) retry(kind, key string, once func(base string) (mutation, error)) (mutation, bool) {
	g.mu.Lock()
	g.sent[key] = true
	g.mu.Unlock()
	pause := 10 * time.Millisecond
	for attempt := 1; ; attempt++ {
		m, err := once(*g.base.Load())
		if err == nil {
			g.mu.Lock()
			g.acked[key] = m
			g.mu.Unlock()
			g.ackedN.Add(1)
			return m, true
		}
		if errors.Is(err, errRefused) {
			g.t.Errorf("%s %s refused: %v", kind, key, err)
			return mutation{}, false
		}
		g.failures.Add(1)
		if time.Now().After(g.giveUp) {
			g.t.Errorf("%s %s not acknowledged after %d attempts: %v", kind, key, attempt, err)
			return mutation{}, false
		}
		time.Sleep(pause)
		pause = min(pause*2, 250*time.Millisecond)
	}
}

// waitAcked waits until at least n mutations were acknowledged.
func (g *loadGen) waitAcked(n int64, done <-chan struct{}) bool {
	for g.ackedN.Load() < n {
		select {
		case <-done:
			return false
		case <-time.After(5 * time.Millisecond):
		}
	}
	return true
}

// ---- the ledger ----

// logEvent is one event of the log, as the ledger reads it.
type logEvent struct {
	ID, Stream, Type, Key, DitherID string
}

// readLog reads every event of the images' streams: those the bridge
// publishes (the blob sweeper's markers, say, it does not).
func readLog(t *testing.T, dbURL string) []logEvent {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatalf("connect to the database: %v", err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT event_id::text, stream_id, event_type,
		coalesce(metadata->>'idempotency_key', ''), coalesce(data->>'dither_id', '')
		FROM events WHERE stream_id LIKE 'image-%' ORDER BY transaction_id, global_position`)
	if err != nil {
		t.Fatalf("read the log: %v", err)
	}
	events, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (logEvent, error) {
		var e logEvent
		return e, r.Scan(&e.ID, &e.Stream, &e.Type, &e.Key, &e.DitherID)
	})
	if err != nil {
		t.Fatalf("read the log: %v", err)
	}
	return events
}

// checkIdempotency checks the log against the acknowledged mutations:
// every acknowledged mutation wrote its events exactly once (an upload its
// ImageUploaded and DitherRequested, a dither request its DitherRequested),
// and no key, acknowledged or not, wrote an event type twice.
func checkIdempotency(t *testing.T, events []logEvent, acked []mutation, sent map[string]bool) {
	t.Helper()
	byKey := map[string][]logEvent{}
	for _, e := range events {
		if e.Key != "" {
			byKey[e.Key] = append(byKey[e.Key], e)
		}
	}
	for key, evs := range byKey {
		if !sent[key] {
			t.Errorf("events under key %s, which no client sent: %+v", key, evs)
		}
		types := map[string]int{}
		for _, e := range evs {
			types[e.Type]++
		}
		for typ, n := range types {
			if n > 1 {
				t.Errorf("key %s wrote %d %s events; retries must not repeat a mutation", key, n, typ)
			}
		}
	}
	for _, m := range acked {
		evs := byKey[m.Key]
		want := []string{"DitherRequested"}
		if m.Kind == "upload" {
			want = []string{"ImageUploaded", "DitherRequested"}
		}
		var got []string
		for _, e := range evs {
			got = append(got, e.Type)
			if e.Stream != "image-"+m.ImageID {
				t.Errorf("%s %s: event %s in stream %s, want image-%s", m.Kind, m.Key, e.Type, e.Stream, m.ImageID)
			}
			if e.Type == "DitherRequested" && e.DitherID != m.DitherID {
				t.Errorf("%s %s: requested dither %s, but the service acknowledged %s", m.Kind, m.Key, e.DitherID, m.DitherID)
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("acknowledged %s %s wrote %v, want %v", m.Kind, m.Key, got, want)
		}
	}
}

// outcomeCounts counts, for every dither requested in the log, its
// completions, failures and stored results.
func outcomeCounts(t *testing.T, dbURL string) map[string][3]int {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatalf("connect to the database: %v", err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT r.data->>'dither_id',
		count(o.*) FILTER (WHERE o.event_type = 'DitherCompleted'),
		count(o.*) FILTER (WHERE o.event_type = 'DitherFailed'),
		count(b.key)
		FROM events r
		LEFT JOIN events o ON o.data->>'dither_id' = r.data->>'dither_id' AND o.event_type IN ('DitherCompleted', 'DitherFailed')
		LEFT JOIN blobs b ON b.key = o.data->>'result_sha256'
		WHERE r.event_type = 'DitherRequested' GROUP BY 1`)
	if err != nil {
		t.Fatalf("count outcomes: %v", err)
	}
	out := map[string][3]int{}
	for rows.Next() {
		var id string
		var c [3]int
		if err := rows.Scan(&id, &c[0], &c[1], &c[2]); err != nil {
			t.Fatal(err)
		}
		out[id] = c
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("count outcomes: %v", err)
	}
	return out
}

// checkOutcomes waits until every dither requested in the log has an
// outcome, then checks that each has exactly one, a completion whose
// result is stored (the test's images are all valid).
func checkOutcomes(t *testing.T, dbURL string, within time.Duration) {
	t.Helper()
	eventually(t, "every requested dither has an outcome", within, func() (bool, string) {
		counts := outcomeCounts(t, dbURL)
		pending := 0
		for _, c := range counts {
			if c[0]+c[1] == 0 {
				pending++
			}
		}
		return pending == 0, fmt.Sprintf("%d of %d dithers without an outcome", pending, len(counts))
	})
	for id, c := range outcomeCounts(t, dbURL) {
		if c != [3]int{1, 0, 1} {
			t.Errorf("dither %s: %d completions, %d failures, %d stored results; want exactly one stored completion", id, c[0], c[1], c[2])
		}
	}
}

// checkBroker waits until the bridge's stream holds an events-topic
// message for every event of the log, then checks that it holds exactly
// one for each (the CloudEvent's id is the event id) and no message id
// twice. The log must be settled (every dither has its outcome).
func checkBroker(t *testing.T, dbURL, natsURL string, within time.Duration) {
	t.Helper()
	var events []logEvent
	eventually(t, "every event reached the broker", within, func() (bool, string) {
		events = readLog(t, dbURL)
		n, err := natsEventsCount(natsURL)
		return err == nil && n >= len(events), fmt.Sprintf("%d of %d events on %s (err %v)", n, len(events), bridge.DefaultEventsTopic, err)
	})
	msgs := natsMessages(t, natsURL)
	onTopic := map[string]int{}
	ids := map[string]int{}
	for _, m := range msgs {
		ids[m.MsgID]++
		if m.Subject == bridge.DefaultEventsTopic {
			onTopic[m.EventID]++
			if m.MsgID != m.EventID && m.MsgID != m.EventID+"/events" {
				t.Errorf("events-topic message of event %s has Nats-Msg-Id %q", m.EventID, m.MsgID)
			}
		}
	}
	for id, n := range ids {
		if n != 1 {
			t.Errorf("Nats-Msg-Id %s is in the stream %d times", id, n)
		}
	}
	missing := 0
	for _, e := range events {
		if onTopic[e.ID] != 1 {
			missing++
			if missing <= 10 {
				t.Errorf("event %s (%s of %s) is on the events topic %d times, want once", e.ID, e.Type, e.Stream, onTopic[e.ID])
			}
		}
	}
	if missing > 0 {
		t.Errorf("%d of %d events are not on the events topic exactly once", missing, len(events))
	}
	if len(onTopic) != len(events) {
		t.Errorf("the events topic has messages of %d events, the log %d events", len(onTopic), len(events))
	}
}
