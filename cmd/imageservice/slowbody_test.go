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
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	const boundary = "slowbodyboundary"
	start := "--" + boundary + "\r\nContent-Disposition: form-data; name=\"operations\"\r\n\r\n" +
		`{"query":"mutation ($f: Upload!) { uploadImage(input: {file: $f}) { image { id } } }","variables":{"f":null}}` + "\r\n"
	fmt.Fprintf(conn, "POST /query HTTP/1.1\r\nHost: %s\r\nContent-Type: multipart/form-data; boundary=%s\r\n"+
		"GraphQL-Require-Preflight: 1\r\nContent-Length: %d\r\n\r\n%s", u.Host, boundary, 1<<20, start)
	// Then nothing more: wait, far longer than the timeout, for the
	// service to give up.
	_ = conn.SetReadDeadline(time.Now().Add(time.Minute))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	switch {
	case err == nil:
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusRequestTimeout || !strings.Contains(string(body), "REQUEST_TIMEOUT") {
			t.Fatalf("a body that never arrived was answered %d %s, want 408 REQUEST_TIMEOUT", resp.StatusCode, body)
		}
	case errors.Is(err, os.ErrDeadlineExceeded):
		t.Fatal("the service still waits for a body that stopped arriving a minute ago")
	default:
		t.Logf("the service closed the connection: %v", err)
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
