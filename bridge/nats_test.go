package bridge_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/imageservice/imageservice/bridge"
	"github.com/imageservice/imageservice/eventstore"
)

// embeddedNATS is a JetStream server that can be stopped and started
// again on the same port and store directory.
type embeddedNATS struct {
	t    testing.TB
	dir  string
	port int
	srv  *natsserver.Server
}

func startNATS(t testing.TB) *embeddedNATS {
	t.Helper()
	n := &embeddedNATS{t: t, dir: t.TempDir(), port: -1}
	n.start()
	n.port = n.srv.Addr().(*net.TCPAddr).Port
	t.Cleanup(n.stop)
	return n
}

func (n *embeddedNATS) start() {
	n.t.Helper()
	srv, err := natsserver.NewServer(&natsserver.Options{
		Host: "127.0.0.1", Port: n.port, JetStream: true, StoreDir: n.dir,
		SyncAlways: true, NoLog: true, NoSigs: true,
	})
	if err != nil {
		n.t.Fatal(err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		n.t.Fatal("embedded NATS did not start")
	}
	n.srv = srv
}

func (n *embeddedNATS) stop() {
	if n.srv != nil {
		n.srv.Shutdown()
		n.srv.WaitForShutdown()
		n.srv = nil
	}
}

func (n *embeddedNATS) url() string { return n.srv.ClientURL() }

// sink returns a new NATS sink on the server.
func (n *embeddedNATS) sink(url string) *bridge.NATS {
	n.t.Helper()
	s, err := bridge.NewNATS(bridge.NATSOptions{URL: url, Subjects: testTopics.All(), AckTimeout: 2 * time.Second})
	if err != nil {
		n.t.Fatal(err)
	}
	n.t.Cleanup(func() { _ = s.Close() })
	return s
}

// jetStream connects to the server at url for the test's duration.
func jetStream(t testing.TB, url string) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// read returns every message in the stream, in stream order.
func readStream(t testing.TB, url string) []bridge.Message {
	t.Helper()
	js := jetStream(t, url)
	ctx := context.Background()
	st, err := js.Stream(ctx, bridge.DefaultNATSStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []bridge.Message
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		raw, err := st.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		m := bridge.Message{Topic: raw.Subject, Key: raw.Header.Get("key"), ID: raw.Header.Get(jetstream.MsgIDHeader), Body: raw.Data}
		for k, vs := range raw.Header {
			for _, v := range vs {
				m.Headers = append(m.Headers, bridge.Header{Key: k, Value: v})
			}
		}
		out = append(out, m)
	}
	return out
}

// streamCount returns how many messages the stream holds (0 when it is missing).
func streamCount(url string) (int, error) {
	nc, err := nats.Connect(url)
	if err != nil {
		return 0, err
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	st, err := js.Stream(context.Background(), bridge.DefaultNATSStream)
	if err != nil {
		return 0, err
	}
	info, err := st.Info(context.Background())
	if err != nil {
		return 0, err
	}
	return int(info.State.Msgs), nil
}

func checkNATSMessages(t testing.TB, got, want []bridge.Message) {
	t.Helper()
	checkSame(t, got, want)
	for i := range want {
		if got[i].ID != want[i].ID || len(got[i].Headers) != len(want[i].Headers)+2 {
			t.Fatalf("message %d: id %s (want %s), headers %v, want %v plus Nats-Msg-Id and key",
				i, got[i].ID, want[i].ID, got[i].Headers, want[i].Headers)
		}
	}
}

func TestNATSForwardsEveryEventInOrder(t *testing.T) {
	w := newWorld(t)
	n := startNATS(t)
	w.workload(0, 6)
	r := w.run(n.sink(n.url()))
	w.waitCaughtUp(r.b)
	w.workload(100, 3) // live, after catching up
	w.waitCaughtUp(r.b)
	checkNATSMessages(t, readStream(t, n.url()), w.expected())
}

// TestNATSOldConsumer reads the stream the way the old services did: by
// the message_type header and the body fields, fetching the URLs.
func TestNATSOldConsumer(t *testing.T) {
	w := newWorld(t)
	n := startNATS(t)
	w.workload(0, 3)
	r := w.run(n.sink(n.url()))
	w.waitCaughtUp(r.b)
	seen := map[string]int{}
	for _, m := range readStream(t, n.url()) {
		var body map[string]any
		if err := json.Unmarshal(m.Body, &body); err != nil {
			t.Fatal(err)
		}
		if m.Header("version") != "" && m.Header("version") != "1.0.0" {
			t.Errorf("version %q", m.Header("version"))
		}
		typ := m.Header("message_type")
		seen[typ]++
		switch typ {
		case bridge.TypeImageUploaded:
			wantTopic(t, m, "images")
			fetchable(t, body["url"].(string))
			if body["filename"] == "" || body["uuid"] == "" {
				t.Errorf("IMAGE_UPLOADED body %s", m.Body)
			}
		case bridge.TypeDitherUploaded:
			wantTopic(t, m, "dithers")
			fetchable(t, body["url_dither"].(string))
		case bridge.TypeImageDeleted, bridge.TypeDitherDeleted:
			if body["uuid"] == "" {
				t.Errorf("%s body %s", typ, m.Body)
			}
		}
	}
	want := map[string]int{bridge.TypeImageUploaded: 3, bridge.TypeDitherUploaded: 3, bridge.TypeImageDeleted: 1, bridge.TypeDitherDeleted: 1, "": 10}
	for k, v := range want {
		if seen[k] != v {
			t.Errorf("%d messages of type %q, want %d (all: %v)", seen[k], k, v, seen)
		}
	}
}

func wantTopic(t testing.TB, m bridge.Message, topic string) {
	t.Helper()
	if m.Topic != topic {
		t.Errorf("%s on %s, want %s", m.Header("message_type"), m.Topic, topic)
	}
}

// fetchable fails unless the URL serves content whose sha256 is its last segment.
func fetchable(t testing.TB, url string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	sum := sha256.Sum256(data)
	if resp.StatusCode != http.StatusOK || url[len(url)-64:] != hex.EncodeToString(sum[:]) {
		t.Errorf("GET %s: %s, %d bytes", url, resp.Status, len(data))
	}
}

func TestNATSOutage(t *testing.T) {
	w := newWorld(t)
	n := startNATS(t)
	url := n.url()
	r := w.run(n.sink(url))
	w.workload(0, 3)
	w.waitCaughtUp(r.b)
	n.stop()
	w.workload(100, 4) // appended while the broker is down
	time.Sleep(300 * time.Millisecond)
	if lag, err := r.b.Lag(context.Background()); err != nil || lag.Events == 0 {
		t.Fatalf("lag during the outage %+v, %v: want some", lag, err)
	}
	n.start()
	w.waitCaughtUp(r.b)
	checkNATSMessages(t, readStream(t, url), w.expected())
}

func TestNATSKilledBetweenPublishAndCheckpoint(t *testing.T) {
	w := newWorld(t)
	n := startNATS(t)
	w.workload(0, 3)
	ready := make(chan *running, 1)
	killer := &killAfterPublish{Sink: n.sink(n.url()), kill: func() { (<-ready).stop() }}
	first := w.run(killer)
	ready <- first
	<-first.done
	if len(killer.published) == 0 {
		t.Fatal("nothing was published before the crash")
	}
	if lag, err := first.b.Lag(context.Background()); err != nil || lag.Events == 0 {
		t.Fatalf("lag after the crash %+v, %v: want the unsaved batch", lag, err)
	}
	again := n.sink(n.url())
	r := w.run(again)
	w.waitCaughtUp(r.b)
	if got := again.Stats().Duplicates; got != int64(len(killer.published)) {
		t.Errorf("%d duplicates acknowledged, want the %d repeated messages", got, len(killer.published))
	}
	checkNATSMessages(t, readStream(t, n.url()), w.expected())
}

// TestNATSBridgesCommitOrderGap holds a transaction with a lower position
// open while a later append commits: the bridge waits for it, and
// forwards it, rather than skipping it.
func TestNATSBridgesCommitOrderGap(t *testing.T) {
	w := newWorld(t)
	n := startNATS(t)
	r := w.run(n.sink(n.url()))
	ctx := context.Background()
	tx, err := w.store.Pool().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	slow := slowUpload(t)
	if _, err := w.store.AppendTx(ctx, tx, slow.stream, eventstore.NoStream, slow.event); err != nil {
		t.Fatal(err)
	}
	w.image(1, false) // commits after the slow append took its position
	time.Sleep(200 * time.Millisecond)
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	w.store.Notify()
	w.waitCaughtUp(r.b)
	got := readStream(t, n.url())
	checkNATSMessages(t, got, w.expected())
	found := false
	for _, m := range got {
		found = found || m.Header("ce_id") == slow.event.ID.String()
	}
	if !found {
		t.Error("the slow transaction's event was skipped")
	}
}
