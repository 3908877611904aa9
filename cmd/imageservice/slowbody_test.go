package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/imageservice/imageservice/internal/pgtest"
)

// An upload whose body stops arriving is given up after
// REQUEST_BODY_TIMEOUT: the service answers with an error or closes the
// connection, appends nothing, and goes on serving others.
func TestSlowBodyIsCut(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the service")
	}
	dbURL, _ := pgtest.URL(t)
	r := startChild(t, "", append(os.Environ(), "DATABASE_URL="+dbURL, "REQUEST_BODY_TIMEOUT=1s", "WRITE_RATE=0"))
	u, err := url.Parse(r.base)
	if err != nil {
		t.Fatal(err)
	}
	// Headers of a websocket upgrade or an event stream change nothing:
	// a body is given its time all the same.
	for _, extra := range []string{"", "Upgrade: websocket\r\n", "Accept: text/event-stream\r\n"} {
		slowUpload(t, u.Host, extra)
	}

	imageID := r.upload(t, 8, 8) // others are still served
	ctx := context.Background()
	db, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(ctx)
	var streams []string
	rows, _ := db.Query(ctx, `SELECT DISTINCT stream_id FROM events WHERE event_type = 'ImageUploaded'`)
	streams, err = pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if len(streams) != 1 || !strings.HasSuffix(streams[0], imageID) {
		t.Fatalf("uploaded images %v, want only %s", streams, imageID)
	}
}

// slowUpload starts an upload with the extra header lines, stops sending
// its body, and checks that the service gives up on it.
func slowUpload(t *testing.T, host, extra string) {
	t.Helper()
	conn, err := net.Dial("tcp", host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	const boundary = "slowbodyboundary"
	start := "--" + boundary + "\r\nContent-Disposition: form-data; name=\"operations\"\r\n\r\n" +
		`{"query":"mutation ($f: Upload!) { uploadImage(input: {file: $f}) { image { id } } }","variables":{"f":null}}` + "\r\n"
	fmt.Fprintf(conn, "POST /query HTTP/1.1\r\nHost: %s\r\nContent-Type: multipart/form-data; boundary=%s\r\n"+
		"GraphQL-Require-Preflight: 1\r\n%sContent-Length: %d\r\n\r\n%s", host, boundary, extra, 1<<20, start)
	// Then nothing more: wait, far longer than the timeout, for the
	// service to give up.
	_ = conn.SetReadDeadline(time.Now().Add(time.Minute))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	switch {
	case err == nil:
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if extra != "" && resp.StatusCode >= 400 {
			return // a websocket upgrade by POST, refused once the body's time was up
		}
		if resp.StatusCode != http.StatusRequestTimeout || !strings.Contains(string(body), "REQUEST_TIMEOUT") {
			t.Fatalf("%q: a body that never arrived was answered %d %s, want 408 REQUEST_TIMEOUT", extra, resp.StatusCode, body)
		}
	case errors.Is(err, os.ErrDeadlineExceeded):
		t.Fatalf("%q: the service still waits for a body that stopped arriving a minute ago", extra)
	default:
		t.Logf("%q: the service closed the connection: %v", extra, err)
	}
}

// An event stream lives past REQUEST_BODY_TIMEOUT: the deadline is lifted
// once its request's body has arrived.
func TestEventStreamOutlivesTheBodyTimeout(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the service")
	}
	dbURL, _ := pgtest.URL(t)
	r := startChild(t, "", append(os.Environ(), "DATABASE_URL="+dbURL, "REQUEST_BODY_TIMEOUT=1s", "WRITE_RATE=0"))
	imageID := r.upload(t, 8, 8)
	body := `{"query":"subscription ($id: ID!) { imageEvents(imageId: $id) { type } }","variables":{"id":"` + imageID + `"}}`
	req, err := http.NewRequest(http.MethodPost, r.base+"/query", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	events := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "data:") {
				events <- sc.Text()
			}
		}
		close(events)
	}()
	time.Sleep(2500 * time.Millisecond) // well past the deadline
	r.graphql(t, `mutation ($id: ID!) { requestDither(input: {imageId: $id, levels: 3}) { dither { id } } }`, map[string]any{"id": imageID}, &struct{}{})
	select {
	case e, ok := <-events:
		if !ok || !strings.Contains(e, "DitherRequested") {
			t.Fatalf("the stream gave %q (open: %t), want the DitherRequested event", e, ok)
		}
	case <-time.After(time.Minute):
		t.Fatal("no event on the stream in a minute")
	}
}
