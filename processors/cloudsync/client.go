package cloudsync

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/cloudinary/cloudinary-go/v2/api"
	"github.com/cloudinary/cloudinary-go/v2/api/uploader"
	"github.com/cloudinary/cloudinary-go/v2/config"
	"github.com/cloudinary/cloudinary-go/v2/logger"
)

// Timeouts of one Cloudinary call.
const (
	callTimeout   = 60 * time.Second
	uploadTimeout = 5 * time.Minute
)

// Asset is an uploaded asset as Cloudinary describes it.
type Asset struct {
	PublicID  string
	SecureURL string
	Version   int
	Bytes     int
}

// Client uploads and destroys Cloudinary image assets with the official
// cloudinary-go uploader, reading the HTTP status of every answer so that
// errors can be classified (see APIError). It is safe for concurrent use.
type Client struct {
	up *uploader.API
}

// NewClient returns a client of the configured account. base is the HTTP
// transport (nil: http.DefaultTransport).
func NewClient(cfg Config, base http.RoundTripper) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c, err := config.NewFromParams(cfg.CloudName, cfg.APIKey, cfg.APISecret)
	if err != nil {
		return nil, fmt.Errorf("cloudinary config: %w", err)
	}
	c.API.UploadPrefix = cfg.prefix()
	c.API.Timeout = int64(callTimeout / time.Second)
	c.API.UploadTimeout = int64(uploadTimeout / time.Second)
	c.Cloud.SignatureAlgorithm = cfg.algorithm()
	if base == nil {
		base = http.DefaultTransport
	}
	log := logger.New()
	log.SetLevel(logger.NONE) // it would log raw responses; we log outcomes ourselves
	return &Client{up: &uploader.API{Config: *c, Logger: log, Client: http.Client{Transport: statusRecorder{base}}}}, nil
}

// Upload uploads an image under publicID, overwriting any asset already
// there (and invalidating CDN copies), so a repeated upload replaces the
// asset instead of adding one.
func (c *Client) Upload(ctx context.Context, publicID string, file io.Reader) (Asset, error) {
	ctx, call := withCall(ctx)
	res, err := c.up.Upload(ctx, file, uploader.UploadParams{
		PublicID: publicID, Overwrite: api.Bool(true), Invalidate: api.Bool(true),
	})
	if err := call.check("upload", publicID, err, errMessage(res, func(r *uploader.UploadResult) string { return r.Error.Message })); err != nil {
		return Asset{}, err
	}
	if res.SecureURL == "" {
		return Asset{}, call.apiError("upload", publicID, "the answer has no secure_url")
	}
	if res.PublicID == "" {
		res.PublicID = publicID
	}
	return Asset{PublicID: res.PublicID, SecureURL: res.SecureURL, Version: res.Version, Bytes: res.Bytes}, nil
}

// Destroy deletes the image asset publicID (invalidating CDN copies). It
// reports whether the asset existed; "not found" is not an error.
func (c *Client) Destroy(ctx context.Context, publicID string) (bool, error) {
	ctx, call := withCall(ctx)
	res, err := c.up.Destroy(ctx, uploader.DestroyParams{PublicID: publicID, Invalidate: api.Bool(true)})
	if err := call.check("destroy", publicID, err, errMessage(res, func(r *uploader.DestroyResult) string { return r.Error.Message })); err != nil {
		return false, err
	}
	switch res.Result {
	case "ok":
		return true, nil
	case "not found":
		return false, nil
	}
	return false, call.apiError("destroy", publicID, fmt.Sprintf("unexpected result %q", res.Result))
}

func errMessage[T any](res *T, msg func(*T) string) string {
	if res == nil {
		return ""
	}
	return msg(res)
}

// call is what the transport saw of one call's HTTP answer.
type call struct {
	status     int
	retryAfter time.Duration
}

type callKey struct{}

func withCall(ctx context.Context) (context.Context, *call) {
	c := &call{}
	return context.WithValue(ctx, callKey{}, c), c
}

// check turns a call's outcome into an error: the client's Go error, an
// HTTP error status, or an error message in the body.
func (c *call) check(op, publicID string, err error, message string) error {
	switch {
	case err != nil && c.status == 0:
		return fmt.Errorf("cloudinary %s %s: %w", op, publicID, err) // no answer: network, timeout
	case err != nil:
		return c.apiError(op, publicID, "unreadable answer: "+err.Error())
	case message != "" || c.status >= 300:
		if message == "" {
			message = http.StatusText(c.status)
		}
		return c.apiError(op, publicID, message)
	}
	return nil
}

func (c *call) apiError(op, publicID, message string) *APIError {
	return &APIError{Op: op, PublicID: publicID, StatusCode: c.status, Message: message, RetryAfter: c.retryAfter}
}

// statusRecorder is an http.RoundTripper that notes each answer's status in
// the call of the request's context: the cloudinary-go client drops it.
type statusRecorder struct{ base http.RoundTripper }

// RoundTrip implements http.RoundTripper.
func (t statusRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if c, ok := req.Context().Value(callKey{}).(*call); ok && err == nil {
		c.status = resp.StatusCode
		c.retryAfter = parseRetryAfter(resp.Header.Get("Retry-After"))
	}
	return resp, err
}

func parseRetryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s > 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0)
	}
	return 0
}
