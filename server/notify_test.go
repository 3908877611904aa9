package server_test

import (
	"context"
	"encoding/json"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"net/textproto"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/imageservice/imageservice/internal/pgtest"
	"github.com/imageservice/imageservice/processors"
	"github.com/imageservice/imageservice/processors/notify"
	"github.com/imageservice/imageservice/server"
)

// smtpServer is a tiny in-process SMTP server (no TLS, no auth) that
// keeps the messages it receives. It answers the first refuse
// connections with 421 (try again later).
type smtpServer struct {
	ln     net.Listener
	refuse atomic.Int64
	conns  atomic.Int64
	// rejectRcpt refuses every recipient for good, quoting its address.
	rejectRcpt atomic.Bool
	// dropAuth is how many AUTH commands are answered by hanging up.
	dropAuth atomic.Int64
	mu       sync.Mutex
	messages [][]byte
}

func newSMTPServer(t *testing.T, refuse int) *smtpServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &smtpServer{ln: ln}
	s.refuse.Store(int64(refuse))
	t.Cleanup(func() { ln.Close() })
	go s.serve()
	return s
}

// config returns the SMTP_URL configuration of the server.
func (s *smtpServer) config() *notify.SMTPConfig {
	_, port, _ := net.SplitHostPort(s.ln.Addr().String())
	return &notify.SMTPConfig{Host: "127.0.0.1", Port: port, From: "images@example.com"}
}

func (s *smtpServer) serve() {
	for {
		conn, err := s.ln.Accept()
		if err != nil {
			return
		}
		go s.session(conn)
	}
}

func (s *smtpServer) session(conn net.Conn) {
	defer conn.Close()
	s.conns.Add(1)
	tp := textproto.NewConn(conn)
	if s.refuse.Add(-1) >= 0 {
		_ = tp.PrintfLine("421 test server busy, try later")
		return
	}
	_ = tp.PrintfLine("220 test ESMTP")
	for {
		line, err := tp.ReadLine()
		if err != nil {
			return
		}
		switch verb := strings.ToUpper(strings.Fields(line + " x")[0]); verb {
		case "EHLO", "HELO":
			_ = tp.PrintfLine("250-test")
			_ = tp.PrintfLine("250 AUTH PLAIN")
		case "AUTH":
			if s.dropAuth.Add(-1) >= 0 {
				return
			}
			_ = tp.PrintfLine("235 2.7.0 authenticated")
		case "RCPT":
			if s.rejectRcpt.Load() {
				_, addr, _ := strings.Cut(line, ":")
				_ = tp.PrintfLine("550 5.1.1 %s: recipient address rejected", strings.TrimSpace(addr))
				continue
			}
			_ = tp.PrintfLine("250 ok")
		case "MAIL", "RSET", "NOOP":
			_ = tp.PrintfLine("250 ok")
		case "DATA":
			_ = tp.PrintfLine("354 go ahead")
			data, err := tp.ReadDotBytes()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.messages = append(s.messages, data)
			s.mu.Unlock()
			_ = tp.PrintfLine("250 queued")
		case "QUIT":
			_ = tp.PrintfLine("221 bye")
			return
		default:
			_ = tp.PrintfLine("502 not implemented")
		}
	}
}

func (s *smtpServer) received() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][]byte(nil), s.messages...)
}

type notificationJSON struct {
	Channel, Status, Target string
	Error, SentAt           *string
}

// notifications returns the notifications of a dither.
func (e *env) notifications(ditherID string) []notificationJSON {
	e.t.Helper()
	var q struct {
		Dither struct {
			Status        string
			URL           *string
			Notifications []notificationJSON
		}
	}
	e.mustDo(`query ($id: ID!) { dither(id: $id) { status url notifications { channel status target error sentAt } } }`,
		map[string]any{"id": ditherID}, &q)
	return q.Dither.Notifications
}

// waitNotification waits until the dither's channel is no longer PENDING.
func (e *env) waitNotification(ditherID, channel string) notificationJSON {
	e.t.Helper()
	var got notificationJSON
	eventually(e.t, channel+" notification of "+ditherID, func() bool {
		for _, n := range e.notifications(ditherID) {
			if n.Channel == channel && n.Status != "PENDING" {
				got = n
				return true
			}
		}
		return false
	})
	return got
}

// countEvents counts the log's events of a type.
func countEvents(t *testing.T, pool *pgxpool.Pool, typ string) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), "SELECT count(*) FROM events WHERE event_type = $1", typ).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// uploadNotified uploads a PNG with a notify input and returns the ids of
// the image and of its automatic dither.
func (e *env) uploadNotified(notifyInput map[string]any) (string, string) {
	e.t.Helper()
	var res uploadResult
	r := e.upload("cat.png", pngBytes(32, 24), map[string]any{"notify": notifyInput}, &res)
	if len(r.Errors) > 0 || len(res.UploadImage.UserErrors) > 0 || res.UploadImage.Dither == nil {
		e.t.Fatalf("upload: %+v %+v", r.Errors, res.UploadImage.UserErrors)
	}
	return res.UploadImage.Image.ID, res.UploadImage.Dither.ID
}

// TestNotifyEmail: the dither's outcome is e-mailed over SMTP as text and
// HTML parts, both with the link to the result, and NotificationSent is
// recorded once.
func TestNotifyEmail(t *testing.T) {
	smtpd := newSMTPServer(t, 0)
	e := start(t, server.Config{AutoDither: true, Processors: processors.Config{Notify: notify.Config{SMTP: smtpd.config()}}})
	_, ditherID := e.uploadNotified(map[string]any{"email": "jane@example.com"})
	n := e.waitNotification(ditherID, "EMAIL")
	if n.Status != "SENT" || n.Target != "j***@example.com" || n.SentAt == nil || n.Error != nil {
		t.Fatalf("notification %+v", n)
	}
	msgs := smtpd.received()
	if len(msgs) != 1 {
		t.Fatalf("%d messages received", len(msgs))
	}
	var q struct{ Dither struct{ URL string } }
	e.mustDo(`query ($id: ID!) { dither(id: $id) { url } }`, map[string]any{"id": ditherID}, &q)
	if !strings.HasPrefix(q.Dither.URL, e.http.URL+"/blobs/") {
		t.Fatalf("result url %q", q.Dither.URL)
	}
	text, htmlPart := parseEmail(t, msgs[0], "jane@example.com")
	if !strings.Contains(text, q.Dither.URL) || !strings.Contains(htmlPart, `href="`+q.Dither.URL+`"`) {
		t.Fatalf("the link %s is missing:\ntext: %s\nhtml: %s", q.Dither.URL, text, htmlPart)
	}
	if status, _, _ := get(t, q.Dither.URL); status != http.StatusOK {
		t.Fatalf("the link answers %d", status)
	}
	if got := countEvents(t, e.pool, "NotificationSent"); got != 1 {
		t.Fatalf("%d NotificationSent events", got)
	}
}

// parseEmail checks the headers of a multipart/alternative message and
// returns its text and HTML parts.
func parseEmail(t *testing.T, raw []byte, to string) (string, string) {
	t.Helper()
	msg, err := mail.ReadMessage(strings.NewReader(string(raw)))
	if err != nil {
		t.Fatal(err)
	}
	if msg.Header.Get("To") != to || msg.Header.Get("From") != "images@example.com" || !strings.Contains(msg.Header.Get("Subject"), "ready") {
		t.Fatalf("headers %v", msg.Header)
	}
	mt, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/alternative" {
		t.Fatalf("content type %q: %v", msg.Header.Get("Content-Type"), err)
	}
	parts := map[string]string{}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(p)
		pt, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
		parts[pt] = string(body)
	}
	if parts["text/plain"] == "" || parts["text/html"] == "" {
		t.Fatalf("parts %v", parts)
	}
	return parts["text/plain"], parts["text/html"]
}

// hookServer receives webhooks and checks their signatures.
type hookServer struct {
	*httptest.Server
	mu       sync.Mutex
	bodies   [][]byte
	last     http.Header // of the last delivery
	badSig   atomic.Int64
	requests atomic.Int64
}

// delivered counts the deliveries with a good signature.
func (h *hookServer) delivered() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.bodies)
}

// header returns a header of the last delivery.
func (h *hookServer) header(name string) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.last.Get(name)
}

func newHookServer(t *testing.T, secret string) *hookServer {
	h := &hookServer{}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.requests.Add(1)
		body, _ := io.ReadAll(r.Body)
		ts, err := strconv.ParseInt(r.Header.Get(notify.HeaderTimestamp), 10, 64)
		if r.Method != http.MethodPost || err != nil || time.Since(time.Unix(ts, 0)) > 5*time.Minute ||
			r.Header.Get(notify.HeaderSignature) != notify.Sign([]byte(secret), ts, body) ||
			r.URL.Query().Get("token") != "abc" {
			h.badSig.Add(1)
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		h.mu.Lock()
		h.bodies, h.last = append(h.bodies, body), r.Header.Clone()
		h.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(h.Close)
	return h
}

// TestNotifyWebhook: a requested dither's outcome is posted as signed JSON
// (WEBHOOK_ALLOW_PRIVATE, since the receiver listens on 127.0.0.1).
func TestNotifyWebhook(t *testing.T) {
	hook := newHookServer(t, "s3cret")
	e := start(t, server.Config{AutoDither: false, Processors: processors.Config{
		Notify: notify.Config{WebhookSecret: "s3cret", AllowPrivate: true}}})
	img := e.mustUpload("cat.png", pngBytes(32, 24))
	var rd struct {
		RequestDither struct {
			Dither     *ditherJSON
			UserErrors []userError
		}
	}
	e.mustDo(`mutation ($id: ID!, $url: String) { requestDither(input: {imageId: $id, levels: 4, notify: {webhookUrl: $url}}) {
		dither { id } userErrors { code } } }`, map[string]any{"id": img.ID, "url": hook.URL + "/hook?token=abc"}, &rd)
	if rd.RequestDither.Dither == nil {
		t.Fatalf("requestDither: %+v", rd.RequestDither.UserErrors)
	}
	ditherID := rd.RequestDither.Dither.ID
	n := e.waitNotification(ditherID, "WEBHOOK")
	if n.Status != "SENT" || n.Target != strings.TrimPrefix(hook.URL, "http://") {
		t.Fatalf("notification %+v", n)
	}
	if hook.badSig.Load() != 0 || len(hook.bodies) != 1 {
		t.Fatalf("%d bad signatures, %d deliveries", hook.badSig.Load(), len(hook.bodies))
	}
	var p map[string]any
	if err := json.Unmarshal(hook.bodies[0], &p); err != nil {
		t.Fatal(err)
	}
	if p["event"] != "dither.completed" || p["image_id"] != img.ID || p["dither_id"] != ditherID || p["status"] != "COMPLETED" ||
		!strings.HasPrefix(p["url"].(string), e.http.URL+"/blobs/") || p["occurred_at"] == nil {
		t.Fatalf("payload %s", hook.bodies[0])
	}
}

// TestNotifyWebhookLoopbackRefused: by default a webhook to 127.0.0.1 is
// refused at the dialer: nothing is sent and NotificationFailed says why.
func TestNotifyWebhookLoopbackRefused(t *testing.T) {
	hook := newHookServer(t, "s3cret")
	e := start(t, server.Config{AutoDither: true, Processors: processors.Config{Notify: notify.Config{WebhookSecret: "s3cret"}}})
	_, ditherID := e.uploadNotified(map[string]any{"webhookUrl": hook.URL + "/hook?token=abc"})
	n := e.waitNotification(ditherID, "WEBHOOK")
	if n.Status != "FAILED" || n.Error == nil || !strings.Contains(*n.Error, "loopback") || strings.Contains(*n.Error, "token") {
		t.Fatalf("notification %+v", n)
	}
	if hook.requests.Load() != 0 {
		t.Fatalf("the webhook got %d requests", hook.requests.Load())
	}
	if got := countEvents(t, e.pool, "NotificationFailed"); got != 1 {
		t.Fatalf("%d NotificationFailed events", got)
	}
}

// TestNotifyBadInput: a bad e-mail address or webhook URL is a user error
// and nothing is appended.
func TestNotifyBadInput(t *testing.T) {
	e := start(t, server.Config{AutoDither: true})
	for _, c := range []struct {
		notify map[string]any
		code   string
	}{
		{map[string]any{"email": "not an address"}, "INVALID_EMAIL"},
		{map[string]any{"webhookUrl": "ftp://example.com/hook"}, "INVALID_WEBHOOK_URL"},
	} {
		var res uploadResult
		r := e.upload("cat.png", pngBytes(8, 8), map[string]any{"notify": c.notify}, &res)
		if len(r.Errors) > 0 || len(res.UploadImage.UserErrors) != 1 || res.UploadImage.UserErrors[0].Code != c.code {
			t.Fatalf("%v: %+v %+v", c.notify, r.Errors, res.UploadImage.UserErrors)
		}
	}
	if n := e.eventCount(); n != 0 {
		t.Fatalf("%d events appended", n)
	}
	img := e.mustUpload("cat.png", pngBytes(8, 8))
	before := e.eventCount()
	var rd struct {
		RequestDither struct{ UserErrors []userError }
	}
	e.mustDo(`mutation ($id: ID!) { requestDither(input: {imageId: $id, notify: {email: "jane@", webhookUrl: "https://example.com/"}}) {
		userErrors { field code } } }`, map[string]any{"id": img.ID}, &rd)
	if len(rd.RequestDither.UserErrors) != 1 || rd.RequestDither.UserErrors[0].Code != "INVALID_EMAIL" {
		t.Fatalf("user errors %+v", rd.RequestDither.UserErrors)
	}
	if e.eventCount() != before {
		t.Fatal("a refused request appended events")
	}
}

// runOn runs the service on a migrated pool until the returned stop is called.
func runOn(t *testing.T, pool *pgxpool.Pool, cfg server.Config) (*env, func()) {
	t.Helper()
	ts := httptest.NewUnstartedServer(nil)
	cfg.PublicURL = "http://" + ts.Listener.Addr().String()
	srv, err := server.New(pool, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ts.Config.Handler = srv.Handler()
	ts.Start()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { srv.Run(ctx); close(done) }()
	var once sync.Once
	stop := func() { once.Do(func() { ts.Close(); cancel(); <-done; srv.Close() }) }
	t.Cleanup(stop)
	return &env{t: t, pool: pool, srv: srv, http: ts}, stop
}

// TestNotifyExactlyOnceAcrossRestart: the service stops after the dither
// completed but before the e-mail went out (the mail server refused the
// first attempt); after a restart exactly one e-mail is sent and one
// NotificationSent recorded.
func TestNotifyExactlyOnceAcrossRestart(t *testing.T) {
	smtpd := newSMTPServer(t, 1)
	pool := pgtest.Pool(t)
	if err := server.Migrate(context.Background(), pool); err != nil {
		t.Fatal(err)
	}
	cfg := server.Config{AutoDither: true, Processors: processors.Config{
		Notify: notify.Config{SMTP: smtpd.config(), RetryBase: 3 * time.Second}}}
	first, stop := runOn(t, pool, cfg)
	_, ditherID := first.uploadNotified(map[string]any{"email": "jane@example.com"})
	eventually(t, "the first delivery attempt", func() bool { return smtpd.conns.Load() >= 1 })
	stop()
	if got := len(smtpd.received()); got != 0 || countEvents(t, pool, "DitherCompleted") != 1 || countEvents(t, pool, "NotificationSent") != 0 {
		t.Fatalf("before the restart: %d messages, %d sent events", got, countEvents(t, pool, "NotificationSent"))
	}
	second, _ := runOn(t, pool, cfg)
	n := second.waitNotification(ditherID, "EMAIL")
	if n.Status != "SENT" {
		t.Fatalf("notification %+v", n)
	}
	time.Sleep(time.Second) // room for a duplicate to show up
	if got := len(smtpd.received()); got != 1 {
		t.Fatalf("%d e-mails sent", got)
	}
	if got := countEvents(t, pool, "NotificationSent"); got != 1 {
		t.Fatalf("%d NotificationSent events", got)
	}
	var jobs int
	if err := pool.QueryRow(context.Background(), "SELECT count(*) FROM river_job WHERE kind = 'notify_email'").Scan(&jobs); err != nil || jobs != 1 {
		t.Fatalf("%d notify_email jobs: %v", jobs, err)
	}
}

// The image's history shows a dither request's notification targets as
// its notifications do: the address redacted, the webhook's host only
// (its path and query may hold tokens).
func TestNotifyTargetsRedactedInHistory(t *testing.T) {
	e := start(t, server.Config{AutoDither: true, NoProcessors: true, Processors: processors.Config{Notify: notify.Config{
		WebhookSecret: "s3cret", SMTP: newSMTPServer(t, 0).config()}}})
	imageID, _ := e.uploadNotified(map[string]any{"email": "jane@example.com", "webhookUrl": "https://hooks.example.com/T0/B1?token=abc"})
	var q struct {
		Image struct {
			History struct {
				Edges []struct {
					Node struct {
						Type string
						Data json.RawMessage
					}
				}
			}
		}
	}
	e.mustDo(`query ($id: ID!) { image(id: $id) { history { edges { node { type data } } } } }`, map[string]any{"id": imageID}, &q)
	seen := false
	for _, edge := range q.Image.History.Edges {
		n, data := edge.Node, string(edge.Node.Data)
		if strings.Contains(data, "jane@") || strings.Contains(data, "token") || strings.Contains(data, "/T0/") {
			t.Errorf("%s shows a notification target: %s", n.Type, data)
		}
		seen = seen || (n.Type == "DitherRequested" && strings.Contains(data, `"j***@example.com"`) && strings.Contains(data, `"hooks.example.com"`))
	}
	if !seen {
		t.Errorf("no DitherRequested with the redacted targets among %d events", len(q.Image.History.Edges))
	}
}

// A recipient the mail server refuses fails the notification for good,
// and the server's reply is shown with the address redacted.
func TestNotifyEmailRefusedRecipient(t *testing.T) {
	smtpd := newSMTPServer(t, 0)
	smtpd.rejectRcpt.Store(true)
	e := start(t, server.Config{AutoDither: true, Processors: processors.Config{Notify: notify.Config{SMTP: smtpd.config()}}})
	_, ditherID := e.uploadNotified(map[string]any{"email": "jane@example.com"})
	n := e.waitNotification(ditherID, "EMAIL")
	reason := ""
	if n.Error != nil {
		reason = *n.Error
	}
	if n.Status != "FAILED" || !strings.Contains(reason, "550") || !strings.Contains(reason, "j***@example.com") || strings.Contains(reason, "jane@") {
		t.Fatalf("notification %+v, error %q", n, reason)
	}
}

// A connection lost while logging in to the mail server is retried, not
// taken for a refusal.
func TestNotifyEmailRetriesALostLogin(t *testing.T) {
	smtpd := newSMTPServer(t, 0)
	smtpd.dropAuth.Store(1)
	cfg := smtpd.config()
	cfg.Username, cfg.Password = "images", "pw"
	e := start(t, server.Config{AutoDither: true, Processors: processors.Config{
		Notify: notify.Config{SMTP: cfg, RetryBase: 100 * time.Millisecond}}})
	_, ditherID := e.uploadNotified(map[string]any{"email": "jane@example.com"})
	if n := e.waitNotification(ditherID, "EMAIL"); n.Status != "SENT" {
		t.Fatalf("notification %+v", n)
	}
	if got := len(smtpd.received()); got != 1 {
		t.Fatalf("%d e-mails sent", got)
	}
}
