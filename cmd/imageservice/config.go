package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/imageservice/imageservice/blobgc"
)

// setting is one configuration variable: its name, default and meaning.
// The README's configuration table and "imageservice help" are made from
// the same list, so they cannot drift apart.
type setting struct {
	name, def, doc string
}

// settings lists every environment variable the binary reads.
var settings = []setting{
	{"DATABASE_URL", "", "PostgreSQL connection URL (pgx syntax); when unset, the POSTGRES_* variables compose it, and when they are unset too the embedded default (SQLite and files under DATA_DIR) is used. The connection pool takes pgxpool's parameters in the URL: `pool_max_conns` (default: the number of CPUs, at least 4; the job queue's listener keeps one, and the event store's listener opens one more of its own), `pool_max_conn_lifetime`, ..."},
	{"DATA_DIR", "./data", "where the embedded default keeps its SQLite database and blobs; its directories must be writable by the service, but a blob file of another owner (a directory restored with the wrong ownership) is rewritten as the service's own when its content is stored again"},
	{"POSTGRES_HOST", "", "old-service name: database host, used when DATABASE_URL is unset"},
	{"POSTGRES_PORT", "5432", "old-service name: database port"},
	{"POSTGRES_USER", "", "old-service name: database user"},
	{"POSTGRES_PASSWORD", "", "old-service name: database password (never logged)"},
	{"POSTGRES_DB", "", "old-service name: database name"},
	{"HTTP_ADDR", ":8080", "address the HTTP server listens on"},
	{"UPLOAD_COMPAT_ADDR", "", "when set, also serve the old upload service's REST API (mounted at /compat/upload) at the root of this address, as on the old port 5000 (e.g. :5000)"},
	{"DITHER_COMPAT_ADDR", "", "when set, also serve the old dithering service's REST API (mounted at /compat/dither) at the root of this address, as on the old port 5001 (e.g. :5001)"},
	{"PUBLIC_URL", "", "base URL clients use to reach the service, for links to originals and results (default http://localhost:<port of HTTP_ADDR>)"},
	{"MIGRATE", "true", "apply database migrations at start-up"},
	{"AUTO_DITHER", "true", "request one dither (2 levels, Floyd-Steinberg) with every upload that asks for none"},
	{"MAX_UPLOAD_BYTES", "26214400", "largest accepted upload, in bytes (25 MiB)"},
	{"MAX_PIXELS", "50000000", "largest accepted image, in pixels (width times height); uploads are decoded at most twice this many pixels at a time, others wait their turn; an upload that turning upright by its EXIF orientation copies (a quarter turn, or any turn of a JPEG) counts twice"},
	{"CLOUDINARY_URL", "", "cloudinary://key:secret@cloud: sync originals and results to Cloudinary (or set the three variables below); never logged"},
	{"CLOUDINARY_CLOUD_NAME", "", "old-service name: Cloudinary cloud name"},
	{"CLOUDINARY_API_KEY", "", "old-service name: Cloudinary API key"},
	{"CLOUDINARY_API_SECRET", "", "old-service name: Cloudinary API secret (never logged)"},
	{"CLOUDINARY_UPLOAD_PREFIX", "", "Cloudinary API base URL (default https://api.cloudinary.com), for a proxy or a test server"},
	{"PUBLIC_READ", "true", "let requests without an API key read; false shows each key only its own images (admins see all)"},
	{"ALLOWED_ORIGINS", "", "comma-separated origins (host patterns) besides the service's own that may open GraphQL websockets"},
	{"WRITE_RATE", "5", "writes (uploads, GraphQL mutations, REST writes) per second allowed to each API key (or address without one; an IPv6 address counts by its /64), on average; 0 turns the limit off"},
	{"WRITE_BURST", "20", "how many writes a client may send at once before WRITE_RATE applies"},
	{"LIVE_CONNECTIONS_PER_CLIENT", "32", "GraphQL websockets and event streams one API key (or address without one; an IPv6 address counts by its /64) may hold open at once on a replica; more are answered 429 TOO_MANY_CONNECTIONS; 0 turns the limit off"},
	{"TRUSTED_PROXIES", "", "comma-separated IP addresses and CIDR prefixes of reverse proxies whose X-Forwarded-For names the client, for WRITE_RATE and LIVE_CONNECTIONS_PER_CLIENT (unset: the peer is the client, so everyone behind a proxy shares its limits)"},
	{"SUBSCRIPTION_BUFFER", "256", "events buffered for each GraphQL subscription; a subscriber that falls further behind is closed with a SUBSCRIBER_TOO_SLOW error"},
	{"ENV", "", "production turns GraphQL introspection and field suggestions off"},
	{"SMTP_URL", "", "smtp://user:pass@host:587?from=images@example.com: e-mail dither outcomes to the addresses given with notify.email (STARTTLS when offered; smtps:// for implicit TLS); the password is never logged"},
	{"WEBHOOK_SECRET", "", "key of the HMAC-SHA256 signature of webhook bodies (X-Imageservice-Signature over \"<X-Imageservice-Timestamp>.<body>\"); webhooks are refused while unset; never logged"},
	{"WEBHOOK_ALLOW_PRIVATE", "false", "let webhooks reach loopback, private and link-local addresses (checked on the address connected to, after DNS resolution)"},
	{"PROCESSORS", "true", "run the dither processor on this replica (false for an API-only replica)"},
	{"DITHER_CONCURRENCY", "", "dithers run at once on this replica (default: the number of CPUs)"},
	{"REQUEST_BODY_TIMEOUT", "5m", "longest a client may take to send a request's body (an upload, say); once the body has arrived the response may take as long as it needs (downloads, websockets, event streams)"},
	{"JOB_TIMEOUT", "5m", "longest one attempt at a dither may take (a River job on PostgreSQL, an attempt of the inline processor on the embedded default)"},
	{"JOB_RESCUE_AFTER", "6m", "when a job whose replica died is retried by another (longer than JOB_TIMEOUT)"},
	{"BLOB_RETENTION", "24h", "how long a blob (original, dither result, thumbnail) that no live image uses is kept after it was last stored before a sweep deletes its bytes; at least 1h and longer than JOB_TIMEOUT; 0 or off keeps every blob for ever"},
	{"BLOB_SWEEP_INTERVAL", "1h", "how often unused blobs are swept (by one replica at a time; at least 5m)"},
	{"NATS_URL", "", "NATS server URL; when set, the bridge republishes events to a JetStream stream (may hold credentials, never logged)"},
	{"NATS_STREAM", "imageservice", "JetStream stream the bridge creates or updates; its subjects are the topic names"},
	{"NATS_DUPLICATE_WINDOW", "2m", "how long JetStream remembers message ids to drop repeated publishes (a Go duration)"},
	{"KAFKA_SERVER", "", "old-service name: Kafka bootstrap servers, comma separated; when set, the bridge republishes events to Kafka"},
	{"KAFKA_IMAGE_TOPIC", "images", "old-service name: topic (and NATS subject) of IMAGE_UPLOADED and IMAGE_DELETED"},
	{"KAFKA_DITHER_TOPIC", "dithers", "old-service name: topic (and NATS subject) of DITHER_UPLOADED and DITHER_DELETED"},
	{"KAFKA_EVENTS_TOPIC", "imageservice.events", "topic (and NATS subject) that gets every image event as a CloudEvents JSON message"},
	{"KAFKA_CREATE_TOPICS", "false", "create missing Kafka topics at start-up, with the broker's default partitions and replication"},
	{"KAFKA_SASL_MECHANISM", "", "SASL mechanism for hosted Kafka: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (unset: no SASL)"},
	{"KAFKA_SASL_USERNAME", "", "SASL user name"},
	{"KAFKA_SASL_PASSWORD", "", "SASL password (never logged)"},
	{"KAFKA_TLS", "false", "connect to Kafka over TLS, verified with the system's certificate authorities"},
	{"OTEL_EXPORTER_OTLP_ENDPOINT", "", "OpenTelemetry collector base URL (http://collector:4318, or :4317 for grpc); when set, traces of requests, GraphQL operations, jobs and broker publishes are exported over OTLP; unset, no exporter is created"},
	{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "", "full traces URL used instead of OTEL_EXPORTER_OTLP_ENDPOINT (for HTTP, /v1/traces is not appended to it)"},
	{"OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf", "OTLP transport: http/protobuf, http/json or grpc"},
	{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "", "OTLP transport of traces, instead of OTEL_EXPORTER_OTLP_PROTOCOL"},
	{"OTEL_EXPORTER_OTLP_HEADERS", "", "headers sent with every export, key1=value1,key2=value2 with URL-encoded values (such as a collector's API key); a malformed one stops the start-up; never logged"},
	{"OTEL_EXPORTER_OTLP_TRACES_HEADERS", "", "headers of trace exports, instead of OTEL_EXPORTER_OTLP_HEADERS (same form; never logged)"},
	{"OTEL_SERVICE_NAME", "imageservice", "service.name of the exported spans"},
	{"OTEL_RESOURCE_ATTRIBUTES", "", "more attributes of the exported spans' resource, key1=value1,key2=value2 (such as deployment.environment.name=prod)"},
	{"OTEL_TRACES_SAMPLER", "parentbased_always_on", "which traces are recorded: always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off or parentbased_traceidratio (the parentbased ones follow the sampled flag of the caller's traceparent)"},
	{"OTEL_TRACES_SAMPLER_ARG", "", "the sampler's argument: the ratio of traces kept for the traceidratio samplers (default 1.0)"},
	{"OTEL_SDK_DISABLED", "false", "true exports no traces even with an endpoint set"},
}

// env returns the value of the named setting, or its default.
func env(name string) string {
	if v, ok := os.LookupEnv(name); ok && v != "" {
		return v
	}
	for _, s := range settings {
		if s.name == name {
			return s.def
		}
	}
	panic(fmt.Sprintf("config: %s is not a documented setting", name))
}

// databaseURL returns DATABASE_URL or, when it is unset, a URL composed
// from the old POSTGRES_* variables. It returns "" when neither is set.
func databaseURL() string {
	if u := env("DATABASE_URL"); u != "" {
		return u
	}
	host := env("POSTGRES_HOST")
	if host == "" {
		return ""
	}
	return (&pgURL{
		host: host, port: env("POSTGRES_PORT"), user: env("POSTGRES_USER"),
		password: env("POSTGRES_PASSWORD"), db: env("POSTGRES_DB"),
	}).String()
}

// envBool reads a true/false setting; a wrong value names the variable.
func envBool(name string) (bool, error) {
	v, err := strconv.ParseBool(env(name))
	if err != nil {
		return false, fmt.Errorf("%s must be true or false, not %q", name, env(name))
	}
	return v, nil
}

// envInt reads a positive integer setting; a wrong value names the variable.
func envInt(name string) (int64, error) {
	v, err := strconv.ParseInt(env(name), 10, 64)
	if err != nil || v <= 0 {
		return 0, fmt.Errorf("%s must be a positive whole number, not %q", name, env(name))
	}
	return v, nil
}

// envDuration reads a positive duration setting such as "90s" or "5m".
func envDuration(name string) (time.Duration, error) {
	v, err := time.ParseDuration(env(name))
	if err != nil || v <= 0 {
		return 0, fmt.Errorf("%s must be a positive duration such as 90s or 5m, not %q", name, env(name))
	}
	return v, nil
}

// blobRetention reads BLOB_RETENTION: 0 (or off) when blobs are kept, else
// a duration of at least blobgc.MinRetention and longer than the longest
// time between storing a blob and recording the event that uses it (a
// dither attempt's jobTimeout; see package blobgc).
func blobRetention(jobTimeout time.Duration) (time.Duration, error) {
	v := env("BLOB_RETENTION")
	if v == "0" || strings.EqualFold(v, "off") {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < blobgc.MinRetention {
		return 0, fmt.Errorf("BLOB_RETENTION must be 0 or off, or a duration of at least %s such as 24h, not %q", blobgc.MinRetention, v)
	}
	if d <= jobTimeout {
		return 0, fmt.Errorf("BLOB_RETENTION (%s) must be longer than JOB_TIMEOUT (%s)", d, jobTimeout)
	}
	return d, nil
}

// publicURL returns PUBLIC_URL without a trailing slash, or a localhost
// URL on the port the server listens on.
func publicURL(listenAddr string) (string, error) {
	if u := env("PUBLIC_URL"); u != "" {
		parsed, err := url.Parse(u)
		if err != nil || (parsed.Scheme != "http" && parsed.Scheme != "https") || parsed.Host == "" {
			return "", fmt.Errorf("PUBLIC_URL must be an absolute http(s) URL, not %q", u)
		}
		return strings.TrimRight(u, "/"), nil
	}
	_, port, err := net.SplitHostPort(listenAddr)
	if err != nil {
		return "", fmt.Errorf("HTTP_ADDR %q: %w", listenAddr, err)
	}
	return "http://localhost:" + port, nil
}

func runHelp(_ context.Context, _ []string, stdout, _ io.Writer) error {
	fmt.Fprintln(stdout, "Usage: imageservice [command] [flags]")
	fmt.Fprintln(stdout, "\nCommands:")
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	for _, name := range sortedCommandNames() {
		fmt.Fprintf(tw, "  %s\t%s\n", name, subcommands()[name].summary)
	}
	tw.Flush()
	fmt.Fprintln(stdout, "\nConfiguration (environment variables):")
	for _, s := range settings {
		def := s.def
		if def == "" {
			def = "(unset)"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", s.name, def, s.doc)
	}
	return tw.Flush()
}

func sortedCommandNames() []string {
	var names []string
	for n := range subcommands() {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// pgURL builds a postgres:// URL with every part escaped.
type pgURL struct{ host, port, user, password, db string }

func (p *pgURL) String() string {
	u := url.URL{Scheme: "postgres", Host: p.host, Path: "/" + p.db}
	if p.port != "" {
		u.Host = p.host + ":" + p.port
	}
	if p.user != "" {
		u.User = url.UserPassword(p.user, p.password)
		if p.password == "" {
			u.User = url.User(p.user)
		}
	}
	return u.String()
}
