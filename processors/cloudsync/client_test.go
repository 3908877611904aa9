package cloudsync_test

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/color"
	"image/png"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/imageservice/imageservice/processors/cloudsync"
	"github.com/imageservice/imageservice/processors/cloudsync/cloudsynctest"
)

// pngBytes is a w×h PNG with a colour from seed.
func pngBytes(t testing.TB, w, h int, seed uint8) []byte {
	t.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for i := range w * h {
		img.Set(i%w, i/w, color.NRGBA{R: seed, G: uint8(i), B: 255 - seed, A: 255})
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func newClient(t *testing.T, cfg cloudsync.Config) *cloudsync.Client {
	t.Helper()
	c, err := cloudsync.NewClient(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestUploadOverwritesUnderOnePublicID(t *testing.T) {
	fake := cloudsynctest.NewServer(t)
	c := newClient(t, fake.Config())
	ctx := context.Background()
	first, err := c.Upload(ctx, "imageservice/a", bytes.NewReader(pngBytes(t, 4, 4, 1)))
	if err != nil {
		t.Fatal(err)
	}
	second, err := c.Upload(ctx, "imageservice/a", bytes.NewReader(pngBytes(t, 4, 4, 2)))
	if err != nil {
		t.Fatal(err)
	}
	if first.PublicID != "imageservice/a" || second.PublicID != "imageservice/a" {
		t.Fatalf("public ids %q, %q", first.PublicID, second.PublicID)
	}
	if !strings.HasPrefix(second.SecureURL, "https://res.cloudinary.com/"+cloudsynctest.CloudName+"/image/upload/v") ||
		first.SecureURL == second.SecureURL {
		t.Fatalf("secure urls %q then %q: want a new version's URL", first.SecureURL, second.SecureURL)
	}
	a, ok := fake.Asset("imageservice/a")
	if !ok || fake.AssetCount() != 1 || a.Uploads != 2 || !bytes.Equal(a.Data, pngBytes(t, 4, 4, 2)) {
		t.Fatalf("assets %d, uploads %d: want one asset overwritten by the second upload", fake.AssetCount(), a.Uploads)
	}
}

func TestSHA256Signatures(t *testing.T) {
	fake := cloudsynctest.NewServer(t)
	fake.Algorithm = cloudsync.SHA256
	if _, err := newClient(t, fake.Config()).Upload(context.Background(), "x", bytes.NewReader(pngBytes(t, 2, 2, 0))); err != nil {
		t.Fatal(err)
	}
	cfg := fake.Config()
	cfg.SignatureAlgorithm = cloudsync.SHA1
	_, err := newClient(t, cfg).Upload(context.Background(), "x", bytes.NewReader(pngBytes(t, 2, 2, 0)))
	if err == nil || cloudsync.Retryable(err) {
		t.Fatalf("a SHA-1 signature for a SHA-256 account: got %v, want a permanent error", err)
	}
}

func TestBadSignatureIsPermanent(t *testing.T) {
	fake := cloudsynctest.NewServer(t)
	cfg := fake.Config()
	cfg.APISecret = "wrong-secret"
	c := newClient(t, cfg)
	_, err := c.Upload(context.Background(), "imageservice/a", bytes.NewReader(pngBytes(t, 2, 2, 0)))
	var apiErr *cloudsync.APIError
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusUnauthorized || !strings.Contains(apiErr.Message, "Invalid Signature") {
		t.Fatalf("got %v, want a 401 Invalid Signature", err)
	}
	if cloudsync.Retryable(err) {
		t.Fatal("a bad signature is retryable; want permanent")
	}
	if strings.Contains(err.Error(), "wrong-secret") {
		t.Fatalf("error shows the secret: %v", err)
	}
	if _, err := c.Destroy(context.Background(), "imageservice/a"); err == nil || cloudsync.Retryable(err) {
		t.Fatalf("destroy with a bad signature: got %v, want a permanent error", err)
	}
	if fake.AssetCount() != 0 || fake.Counts().Rejected != 2 {
		t.Fatalf("counts %+v, assets %d", fake.Counts(), fake.AssetCount())
	}
}

// TestFakeChecksEveryParameter signs one set of parameters and sends
// another: the fake must refuse it, or it would not prove signatures right.
func TestFakeChecksEveryParameter(t *testing.T) {
	fake := cloudsynctest.NewServer(t)
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	signed := url.Values{"public_id": {"a"}, "timestamp": {ts}, "invalidate": {"true"}}
	sig := cloudsynctest.Sign(cloudsynctest.StringToSign(signed), fake.APISecret, "")
	if want := "invalidate=true&public_id=a&timestamp=" + ts; cloudsynctest.StringToSign(signed) != want {
		t.Fatalf("string to sign %q, want %q", cloudsynctest.StringToSign(signed), want)
	}
	post := func(v url.Values) int {
		v.Set("api_key", fake.APIKey)
		v.Set("signature", sig)
		resp, err := http.PostForm(fake.URL+"/v1_1/"+fake.CloudName+"/image/destroy", v)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := post(url.Values{"public_id": {"a"}, "timestamp": {ts}, "invalidate": {"true"}}); got != http.StatusOK {
		t.Fatalf("correctly signed: %d", got)
	}
	if got := post(url.Values{"public_id": {"b"}, "timestamp": {ts}, "invalidate": {"true"}}); got != http.StatusUnauthorized {
		t.Fatalf("tampered public_id: %d, want 401", got)
	}
	// Excluded parameters may change without breaking the signature.
	if got := post(url.Values{"public_id": {"a"}, "timestamp": {ts}, "invalidate": {"true"}, "resource_type": {"image"}}); got != http.StatusOK {
		t.Fatalf("with resource_type: %d", got)
	}
}

func TestRateLimitIsRetried(t *testing.T) {
	for _, status := range []int{420, 429, 500, 503} {
		t.Run(strconv.Itoa(status), func(t *testing.T) {
			fake := cloudsynctest.NewServer(t)
			c := newClient(t, fake.Config())
			_, err := c.Upload(context.Background(), "p", bytes.NewReader(pngBytes(t, 2, 2, 0)))
			if err != nil {
				t.Fatal(err)
			}
			fake.FailNext(status, 1)
			_, err = c.Upload(context.Background(), "p", bytes.NewReader(pngBytes(t, 2, 2, 0)))
			var apiErr *cloudsync.APIError
			if !errors.As(err, &apiErr) || apiErr.StatusCode != status || !cloudsync.Retryable(err) {
				t.Fatalf("got %v, want a retryable %d", err, status)
			}
			if _, err := c.Upload(context.Background(), "p", bytes.NewReader(pngBytes(t, 2, 2, 0))); err != nil {
				t.Fatalf("the retry: %v", err)
			}
		})
	}
}

func TestBadFileIsPermanent(t *testing.T) {
	fake := cloudsynctest.NewServer(t)
	_, err := newClient(t, fake.Config()).Upload(context.Background(), "p", strings.NewReader("not an image"))
	var apiErr *cloudsync.APIError
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusBadRequest || cloudsync.Retryable(err) {
		t.Fatalf("got %v, want a permanent 400", err)
	}
}

func TestNetworkErrorIsRetryable(t *testing.T) {
	fake := cloudsynctest.NewServer(t)
	c := newClient(t, fake.Config())
	fake.Close()
	_, err := c.Upload(context.Background(), "p", bytes.NewReader(pngBytes(t, 2, 2, 0)))
	if err == nil || !cloudsync.Retryable(err) {
		t.Fatalf("server down: got %v, want a retryable error", err)
	}
}

func TestDestroyNotFoundIsDone(t *testing.T) {
	fake := cloudsynctest.NewServer(t)
	c := newClient(t, fake.Config())
	ctx := context.Background()
	if _, err := c.Upload(ctx, "p", bytes.NewReader(pngBytes(t, 2, 2, 0))); err != nil {
		t.Fatal(err)
	}
	if found, err := c.Destroy(ctx, "p"); err != nil || !found {
		t.Fatalf("destroy: %v, %v", found, err)
	}
	if found, err := c.Destroy(ctx, "p"); err != nil || found {
		t.Fatalf("destroy again: %v, %v; want not found and no error", found, err)
	}
	if fake.AssetCount() != 0 {
		t.Fatal("asset left")
	}
}
