package cloudsync

import (
	"fmt"
	"log/slog"
	"net/url"
	"strings"
)

// Environment variables read by FromEnv.
const (
	EnvURL          = "CLOUDINARY_URL"
	EnvCloudName    = "CLOUDINARY_CLOUD_NAME"
	EnvAPIKey       = "CLOUDINARY_API_KEY"
	EnvAPISecret    = "CLOUDINARY_API_SECRET"
	EnvUploadPrefix = "CLOUDINARY_UPLOAD_PREFIX"
)

// DefaultUploadPrefix is Cloudinary's API base URL.
const DefaultUploadPrefix = "https://api.cloudinary.com"

// Signature algorithms of Config.SignatureAlgorithm.
const (
	SHA1   = "sha1"
	SHA256 = "sha256"
)

// Config is how to reach a Cloudinary account. Its String and LogValue
// never show the API secret.
type Config struct {
	CloudName string
	APIKey    string
	APISecret string
	// UploadPrefix is the API's base URL (DefaultUploadPrefix when empty);
	// tests point it at a local server.
	UploadPrefix string
	// SignatureAlgorithm signs requests: SHA1 (the default) or SHA256.
	SignatureAlgorithm string
}

// String describes the config without its secret.
func (c Config) String() string {
	return fmt.Sprintf("cloudinary://%s:***@%s (%s)", c.APIKey, c.CloudName, c.prefix())
}

// LogValue implements slog.LogValuer without the secret.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(slog.String("cloud_name", c.CloudName), slog.String("api_key", c.APIKey),
		slog.String("upload_prefix", c.prefix()))
}

func (c Config) prefix() string {
	if c.UploadPrefix == "" {
		return DefaultUploadPrefix
	}
	return c.UploadPrefix
}

func (c Config) algorithm() string {
	if c.SignatureAlgorithm == "" {
		return SHA1
	}
	return c.SignatureAlgorithm
}

// Validate checks that every field is usable. Its errors name the field,
// never its value.
func (c Config) Validate() error {
	switch {
	case strings.TrimSpace(c.CloudName) == "" || strings.ContainsAny(c.CloudName, "/?#@: "):
		return fmt.Errorf("cloudinary config: cloud name is missing or malformed")
	case strings.TrimSpace(c.APIKey) == "":
		return fmt.Errorf("cloudinary config: api key is missing")
	case c.APISecret == "":
		return fmt.Errorf("cloudinary config: api secret is missing")
	case c.algorithm() != SHA1 && c.algorithm() != SHA256:
		return fmt.Errorf("cloudinary config: signature algorithm must be %s or %s", SHA1, SHA256)
	}
	if c.UploadPrefix != "" {
		u, err := url.Parse(c.UploadPrefix)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" {
			return fmt.Errorf("cloudinary config: upload prefix must be an http(s) URL without a query")
		}
	}
	return nil
}

// FromEnv reads the config from CLOUDINARY_URL
// (cloudinary://API_KEY:API_SECRET@CLOUD_NAME, optionally with
// ?upload_prefix=...&signature_algorithm=...) or, when that is unset, from
// CLOUDINARY_CLOUD_NAME, CLOUDINARY_API_KEY and CLOUDINARY_API_SECRET.
// CLOUDINARY_UPLOAD_PREFIX, when set, overrides the upload prefix. With
// none of them set, sync is off: (nil, false, nil). A partial or malformed
// config is an error naming the variable; no error shows a secret.
func FromEnv(getenv func(string) string) (*Config, bool, error) {
	var cfg Config
	var err error
	raw := strings.TrimSpace(getenv(EnvURL))
	switch {
	case raw != "":
		cfg, err = parseURL(raw)
	case anySet(getenv, EnvCloudName, EnvAPIKey, EnvAPISecret):
		cfg, err = fromParts(getenv)
	default:
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	if p := strings.TrimSpace(getenv(EnvUploadPrefix)); p != "" {
		cfg.UploadPrefix = strings.TrimRight(p, "/")
	}
	if err := cfg.Validate(); err != nil {
		return nil, false, fmt.Errorf("%s: %w", source(raw), err)
	}
	return &cfg, true, nil
}

func source(raw string) string {
	if raw != "" {
		return EnvURL
	}
	return "CLOUDINARY_* variables"
}

func anySet(getenv func(string) string, names ...string) bool {
	for _, n := range names {
		if strings.TrimSpace(getenv(n)) != "" {
			return true
		}
	}
	return false
}

// fromParts reads the three-variable form; every one is required.
func fromParts(getenv func(string) string) (Config, error) {
	var missing []string
	for _, n := range []string{EnvCloudName, EnvAPIKey, EnvAPISecret} {
		if strings.TrimSpace(getenv(n)) == "" {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		return Config{}, fmt.Errorf("cloudinary config is partial: %s not set (set all of %s, %s and %s, or %s)",
			strings.Join(missing, ", "), EnvCloudName, EnvAPIKey, EnvAPISecret, EnvURL)
	}
	return Config{
		CloudName: strings.TrimSpace(getenv(EnvCloudName)),
		APIKey:    strings.TrimSpace(getenv(EnvAPIKey)),
		APISecret: strings.TrimSpace(getenv(EnvAPISecret)),
	}, nil
}

// parseURL reads cloudinary://key:secret@cloud. Its errors never quote the
// URL, which holds the secret.
func parseURL(raw string) (Config, error) {
	const want = "want cloudinary://API_KEY:API_SECRET@CLOUD_NAME"
	u, err := url.Parse(raw)
	if err != nil {
		return Config{}, fmt.Errorf("%s is not a valid URL (%s)", EnvURL, want)
	}
	if u.Scheme != "cloudinary" {
		return Config{}, fmt.Errorf("%s must use the cloudinary:// scheme (%s)", EnvURL, want)
	}
	secret, _ := u.User.Password()
	cfg := Config{CloudName: u.Host, APIKey: u.User.Username(), APISecret: secret}
	switch {
	case cfg.APIKey == "":
		return Config{}, fmt.Errorf("%s has no API key (%s)", EnvURL, want)
	case cfg.APISecret == "":
		return Config{}, fmt.Errorf("%s has no API secret (%s)", EnvURL, want)
	case cfg.CloudName == "":
		return Config{}, fmt.Errorf("%s has no cloud name (%s)", EnvURL, want)
	}
	q := u.Query()
	cfg.UploadPrefix = strings.TrimRight(q.Get("upload_prefix"), "/")
	cfg.SignatureAlgorithm = q.Get("signature_algorithm")
	return cfg, nil
}
