package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/imageservice/imageservice/server"
	"github.com/imageservice/imageservice/tracing"
)

// compatListener is one old service's REST API on a listener of its own.
type compatListener struct {
	setting string
	ln      net.Listener
	handler http.Handler
}

// listenCompat opens a listener for each of UPLOAD_COMPAT_ADDR and
// DITHER_COMPAT_ADDR that is set, serving that old service at its root,
// behind the main address's API keys and limits (srv.CompatHandlers), with
// a span for every request as on the main address.
func listenCompat(srv *server.Server, tp trace.TracerProvider) ([]compatListener, error) {
	upload, dither := srv.CompatHandlers()
	var out []compatListener
	for _, c := range []struct {
		setting string
		handler http.Handler
	}{{"UPLOAD_COMPAT_ADDR", upload}, {"DITHER_COMPAT_ADDR", dither}} {
		addr := env(c.setting)
		if addr == "" {
			continue
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			closeCompat(out)
			return nil, fmt.Errorf("listen on %s %q: %w", c.setting, addr, err)
		}
		out = append(out, compatListener{setting: c.setting, ln: ln, handler: tracing.Middleware(tp, c.handler)})
	}
	return out, nil
}

// closeCompat closes listeners that will not be served.
func closeCompat(lns []compatListener) {
	for _, l := range lns {
		_ = l.ln.Close()
	}
}

// serveCompat serves each listener until ctx ends; a listener that fails
// is logged and does not stop the service.
func serveCompat(ctx context.Context, wg *sync.WaitGroup, lns []compatListener, bodyTimeout time.Duration, stdout io.Writer, log *slog.Logger) {
	for _, l := range lns {
		fmt.Fprintf(stdout, "%s: compatibility API listening on http://%s\n", l.setting, l.ln.Addr())
		wg.Go(func() {
			if err := serveHTTP(ctx, l.ln, l.handler, bodyTimeout, log.With("listener", l.setting)); err != nil {
				log.Error("compatibility API stopped", "setting", l.setting, "err", err)
			}
		})
	}
}
