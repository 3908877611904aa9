package main

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
)

// loadCompose loads ../../compose.yaml as "docker compose" would, with the
// given variables as the only environment (no .env, no OS environment),
// so the result does not depend on the machine that runs the test.
func loadCompose(t *testing.T, environ ...string) *types.Project {
	t.Helper()
	opts, err := cli.NewProjectOptions([]string{"../../compose.yaml"},
		cli.WithWorkingDirectory("../.."), cli.WithEnv(environ))
	if err != nil {
		t.Fatal(err)
	}
	p, err := cli.ProjectFromOptions(context.Background(), opts)
	if err != nil {
		t.Fatalf("compose.yaml is not valid: %v", err)
	}
	return p
}

// pinnedImage reports whether an image reference names one version: a
// digest, or a tag other than "latest" with a version number in it. The
// distroless images carry their Debian release in the repository name
// (static-debian12) and a variant tag (nonroot), which counts as pinned to
// that release.
func pinnedImage(ref string) bool {
	if strings.Contains(ref, "@sha256:") {
		return true
	}
	name, tag := ref, ""
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		name, tag = ref[:i], ref[i+1:]
	}
	switch {
	case tag == "" || tag == "latest":
		return false
	case regexp.MustCompile(`\d+\.\d+`).MatchString(tag):
		return true
	default:
		return regexp.MustCompile(`^gcr\.io/distroless/[a-z]+-debian\d+$`).MatchString(name)
	}
}

func TestPinnedImage(t *testing.T) {
	for ref, want := range map[string]bool{
		"postgres:17.11-bookworm":                   true,
		"redpandadata/redpanda:v25.3.10":            true,
		"localhost:5000/nats:2.15.0":                true,
		"nats@sha256:0123abcd":                      true,
		"gcr.io/distroless/static-debian12:nonroot": true,
		"postgres":                         false,
		"postgres:latest":                  false,
		"postgres:17":                      false,
		"localhost:5000/nats":              false,
		"nats:alpine":                      false,
		"gcr.io/distroless/static:nonroot": false,
	} {
		if got := pinnedImage(ref); got != want {
			t.Errorf("pinnedImage(%q) = %v, want %v", ref, got, want)
		}
	}
}

func TestComposeServices(t *testing.T) {
	p := loadCompose(t)
	for _, name := range []string{"postgres", "nats", "redpanda", "imageservice"} {
		if _, ok := p.Services[name]; !ok {
			t.Errorf("compose.yaml has no service %s", name)
		}
	}
	for name, s := range p.Services {
		switch {
		case s.Build != nil:
			// Its base images are checked in TestDockerfile.
			if s.Build.Dockerfile != "Dockerfile" {
				t.Errorf("%s: built from %q, not the Dockerfile TestDockerfile checks", name, s.Build.Dockerfile)
			}
		case !pinnedImage(s.Image):
			t.Errorf("%s: image %q is not pinned to a version", name, s.Image)
		}
		if s.HealthCheck == nil || s.HealthCheck.Disable || len(s.HealthCheck.Test) == 0 {
			t.Errorf("%s has no health check", name)
		}
		for dep, d := range s.DependsOn {
			if d.Condition != types.ServiceConditionHealthy {
				t.Errorf("%s depends on %s with condition %q, not %s", name, dep, d.Condition, types.ServiceConditionHealthy)
			}
		}
		for _, v := range s.Volumes {
			if v.Type == types.VolumeTypeVolume && v.Source == "" {
				t.Errorf("%s: anonymous volume at %s is lost on docker compose down; name it", name, v.Target)
			}
		}
	}
	svc := p.Services["imageservice"]
	for _, dep := range []string{"postgres", "nats", "redpanda"} {
		if _, ok := svc.DependsOn[dep]; !ok {
			t.Errorf("imageservice does not depend on %s", dep)
		}
	}
	if got := strings.Join(svc.HealthCheck.Test, " "); !strings.Contains(got, "imageservice healthcheck") {
		t.Errorf("imageservice health check %q does not run the healthcheck command", got)
	}
	if svc := p.Services["postgres"]; !slices.ContainsFunc(svc.Volumes, func(v types.ServiceVolumeConfig) bool {
		return v.Source != "" && v.Target == "/var/lib/postgresql/data"
	}) {
		t.Error("postgres keeps its data in no named volume")
	}
	if !strings.Contains(strings.Join(p.Services["nats"].Command, " "), "--jetstream") {
		t.Error("nats runs without JetStream")
	}
}

// TestComposeEnvironment checks the variables compose.yaml gives the
// service against the settings the binary reads, and that the service's
// configuration loads from them.
func TestComposeEnvironment(t *testing.T) {
	p := loadCompose(t)
	svc := p.Services["imageservice"]
	known := map[string]bool{}
	for _, s := range settings {
		known[s.name] = true
	}
	environ := map[string]string{}
	for k, v := range svc.Environment {
		if !known[k] {
			t.Errorf("compose.yaml gives the service %s, which the binary does not read", k)
		}
		if v != nil {
			environ[k] = *v
		}
	}
	if environ["DATABASE_URL"] == "" && environ["POSTGRES_HOST"] == "" {
		t.Error("compose.yaml gives the service no database: neither DATABASE_URL nor POSTGRES_HOST")
	}
	for _, k := range []string{"HTTP_ADDR", "PUBLIC_URL", "NATS_URL", "KAFKA_SERVER", "KAFKA_IMAGE_TOPIC", "KAFKA_DITHER_TOPIC"} {
		if environ[k] == "" {
			t.Errorf("compose.yaml does not set %s for the service", k)
		}
	}

	// The addresses name the other services and their ports.
	if environ["POSTGRES_HOST"] != "" {
		if environ["POSTGRES_HOST"] != "postgres" {
			t.Errorf("POSTGRES_HOST = %q, not the postgres service", environ["POSTGRES_HOST"])
		}
		pg := p.Services["postgres"].Environment
		for _, k := range []string{"POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB"} {
			if pg[k] == nil || *pg[k] != environ[k] {
				t.Errorf("%s differs between the postgres and imageservice services", k)
			}
		}
	}
	if u, err := url.Parse(environ["NATS_URL"]); err != nil || u.Hostname() != "nats" {
		t.Errorf("NATS_URL = %q does not name the nats service", environ["NATS_URL"])
	}
	redpanda := strings.Join(p.Services["redpanda"].Command, " ")
	for b := range strings.SplitSeq(environ["KAFKA_SERVER"], ",") {
		if !strings.Contains(redpanda, "://"+b) {
			t.Errorf("KAFKA_SERVER broker %q is not an address redpanda advertises (%s)", b, redpanda)
		}
	}
	_, port, err := net.SplitHostPort(environ["HTTP_ADDR"])
	if err != nil {
		t.Fatalf("HTTP_ADDR %q: %v", environ["HTTP_ADDR"], err)
	}
	if !slices.ContainsFunc(svc.Ports, func(pc types.ServicePortConfig) bool { return pc.Target == parsePort(port) }) {
		t.Errorf("HTTP_ADDR port %s is not published (ports: %v)", port, svc.Ports)
	}

	// The configuration serve reads from exactly this environment loads.
	for _, s := range settings {
		t.Setenv(s.name, environ[s.name])
	}
	cfg, err := loadServeConfig()
	if err != nil {
		t.Fatalf("serve would refuse compose.yaml's environment: %v", err)
	}
	if want := "postgres://imageservice:imageservice@postgres:5432/imageservice"; cfg.databaseURL != want {
		t.Errorf("database URL = %q, want %q", cfg.databaseURL, want)
	}
}

func parsePort(s string) uint32 {
	var n uint32
	for _, c := range s {
		n = n*10 + uint32(c-'0')
	}
	return n
}

// TestComposeSecretsFromEnvironment checks that a password set in the
// environment (or .env) reaches both the database and the service, and that
// the binary escapes it into the URL.
func TestComposeSecretsFromEnvironment(t *testing.T) {
	p := loadCompose(t, "POSTGRES_PASSWORD=s3cret/with@odd:chars", "PUBLIC_URL=https://images.example.com")
	for _, name := range []string{"postgres", "imageservice"} {
		if v := p.Services[name].Environment["POSTGRES_PASSWORD"]; v == nil || *v != "s3cret/with@odd:chars" {
			t.Errorf("%s: POSTGRES_PASSWORD is not taken from the environment", name)
		}
	}
	svc := p.Services["imageservice"]
	if v := svc.Environment["PUBLIC_URL"]; v == nil || *v != "https://images.example.com" {
		t.Error("PUBLIC_URL is not taken from the environment")
	}
	for _, s := range settings {
		v := ""
		if p := svc.Environment[s.name]; p != nil {
			v = *p
		}
		t.Setenv(s.name, v)
	}
	u, err := url.Parse(databaseURL())
	if err != nil {
		t.Fatal(err)
	}
	if pw, _ := u.User.Password(); pw != "s3cret/with@odd:chars" || u.Host != "postgres:5432" {
		t.Errorf("database URL does not carry the password intact")
	}
}

// dockerfileInstructions returns the Dockerfile's instructions, one a
// line, continuation lines joined and comments dropped.
func dockerfileInstructions(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	cur := ""
	for line := range strings.Lines(string(b)) {
		line = strings.TrimSpace(line)
		if cur == "" && (line == "" || strings.HasPrefix(line, "#")) {
			continue
		}
		if more, ok := strings.CutSuffix(line, "\\"); ok {
			cur += more + " "
			continue
		}
		out = append(out, cur+line)
		cur = ""
	}
	return out
}

func TestDockerfile(t *testing.T) {
	var stages [][]string // the instructions of each stage, from its FROM on
	var stageNames []string
	for _, in := range dockerfileInstructions(t) {
		fields := strings.Fields(in)
		if strings.EqualFold(fields[0], "FROM") {
			image := fields[len(fields)-1]
			if len(fields) >= 4 && strings.EqualFold(fields[len(fields)-2], "AS") {
				image = fields[len(fields)-3]
				stageNames = append(stageNames, fields[len(fields)-1])
			}
			if image != "scratch" && !slices.Contains(stageNames, image) && !pinnedImage(image) {
				t.Errorf("Dockerfile: base image %q is not pinned to a version", image)
			}
			stages = append(stages, nil)
		}
		if len(stages) == 0 {
			continue
		}
		stages[len(stages)-1] = append(stages[len(stages)-1], in)
	}
	if len(stages) < 2 {
		t.Fatalf("Dockerfile has %d stages; want a build stage and a final one", len(stages))
	}
	all := strings.Join(slices.Concat(stages...), "\n")
	build := regexp.MustCompile(`(?m)^RUN .*\bgo build\b.*$`).FindString(all)
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "./cmd/imageservice"} {
		if !strings.Contains(build, want) {
			t.Errorf("Dockerfile: the go build step %q lacks %s", build, want)
		}
	}

	final := stages[len(stages)-1]
	user := ""
	var entrypoint, healthcheck string
	for _, in := range final {
		instr, rest, _ := strings.Cut(in, " ")
		switch strings.ToUpper(instr) {
		case "USER":
			user = rest
		case "ENTRYPOINT":
			entrypoint = rest
		case "HEALTHCHECK":
			healthcheck = rest
		case "RUN":
			t.Errorf("Dockerfile: the final stage runs %q; it should only copy the static binary", rest)
		}
	}
	if u, _, _ := strings.Cut(user, ":"); u == "" || u == "root" || u == "0" {
		t.Errorf("Dockerfile: the final stage runs as %q; want a non-root USER", user)
	}
	if !slices.Contains(final, "EXPOSE 8080") {
		t.Error("Dockerfile does not EXPOSE 8080")
	}
	// The binary compose.yaml's health check runs is the one the image holds.
	bin := regexp.MustCompile(`"(/[^"]*imageservice)"`).FindStringSubmatch(entrypoint)
	if bin == nil {
		t.Fatalf("Dockerfile: ENTRYPOINT %q does not run the imageservice binary", entrypoint)
	}
	if !strings.Contains(healthcheck, `"`+bin[1]+`", "healthcheck"`) {
		t.Errorf("Dockerfile: HEALTHCHECK %q does not run %s healthcheck", healthcheck, bin[1])
	}
	svc := loadCompose(t).Services["imageservice"]
	if got := svc.HealthCheck.Test; len(got) < 3 || got[1] != bin[1] || got[2] != "healthcheck" {
		t.Errorf("compose.yaml: imageservice health check %q does not run %s healthcheck", got, bin[1])
	}
}

func TestHealthcheckCommand(t *testing.T) {
	status := http.StatusOK
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/readyz" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(status)
		w.Write([]byte(`{"status":"x"}`))
	}))
	defer srv.Close()
	ctx := context.Background()
	var out, errs strings.Builder
	if code := run(ctx, []string{"healthcheck", "--url", srv.URL + "/readyz"}, &out, &errs); code != 0 {
		t.Errorf("healthcheck of a ready server exited %d: %s", code, errs.String())
	}
	// Without --url it checks the port of HTTP_ADDR on loopback.
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	t.Setenv("HTTP_ADDR", ":"+port)
	if code := run(ctx, []string{"healthcheck"}, &out, &errs); code != 0 {
		t.Errorf("healthcheck via HTTP_ADDR exited %d: %s", code, errs.String())
	}
	status = http.StatusServiceUnavailable
	errs.Reset()
	if code := run(ctx, []string{"healthcheck"}, &out, &errs); code != 1 || !strings.Contains(errs.String(), "503") {
		t.Errorf("healthcheck of an unready server exited %d: %s", code, errs.String())
	}
	srv.Close()
	if code := run(ctx, []string{"healthcheck"}, &out, &errs); code != 1 {
		t.Errorf("healthcheck with no server exited %d", code)
	}
}

func TestReadyzURL(t *testing.T) {
	for addr, want := range map[string]string{
		":8080":          "http://127.0.0.1:8080/readyz",
		"0.0.0.0:9000":   "http://127.0.0.1:9000/readyz",
		"[::]:9000":      "http://127.0.0.1:9000/readyz",
		"127.0.0.1:8081": "http://127.0.0.1:8081/readyz",
		"[::1]:8081":     "http://[::1]:8081/readyz",
		"localhost:8082": "http://localhost:8082/readyz",
		"127.0.0.1:0":    "",
		"8080":           "",
	} {
		got, err := readyzURL(addr)
		if got != want || (want == "") != (err != nil) {
			t.Errorf("readyzURL(%q) = %q, %v; want %q", addr, got, err, want)
		}
	}
}
