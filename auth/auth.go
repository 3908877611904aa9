// Package auth is the service's API keys and who a request acts as.
//
// Keys are event-sourced like everything else: ApiKeyCreated and
// ApiKeyRevoked events in one stream ("apikeys"), so they work on every
// event store backend and their history is audited. Only a hash of each
// key's secret is recorded. A key reads "isk_<id>_<secret>": the id finds
// the key, and the secret's SHA-256 is compared in constant time.
//
// With no key created the service runs open: every request acts as the
// anonymous principal with every scope, and the service says so at
// start-up.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/imageservice/imageservice/eventstore"
)

// Scopes a key may hold.
const (
	ScopeRead  = "read"
	ScopeWrite = "write"
	ScopeAdmin = "admin"
)

// Stream is the event stream of the API keys.
const Stream = "apikeys"

// Event types of the keys' stream.
const (
	TypeKeyCreated = "ApiKeyCreated"
	TypeKeyRevoked = "ApiKeyRevoked"
)

// Errors of authentication.
var (
	ErrBadKey    = errors.New("auth: unknown or malformed API key")
	ErrRevoked   = errors.New("auth: API key revoked")
	ErrBadScopes = errors.New("auth: scopes must be read, write or admin")
)

// Principal is who a request acts as.
type Principal struct {
	// KeyID is the key's id, or "" for the anonymous principal.
	KeyID string
	// Name is the key's name.
	Name   string
	Scopes []string
}

// Anonymous is the principal of a request without a key.
var Anonymous = Principal{}

// Actor is the principal as recorded in event metadata and as an
// image's owner: "key:<id>", or "" when anonymous.
func (p Principal) Actor() string {
	if p.KeyID == "" {
		return ""
	}
	return "key:" + p.KeyID
}

// Can reports whether the principal holds the scope (admin holds all).
func (p Principal) Can(scope string) bool {
	return slices.Contains(p.Scopes, scope) || slices.Contains(p.Scopes, ScopeAdmin)
}

// Permits reports whether the principal may do what needs scope, reads
// (ScopeRead) being open to everyone when publicRead is set.
func (p Principal) Permits(scope string, publicRead bool) bool {
	return p.Can(scope) || (scope == ScopeRead && publicRead)
}

// Sees reports whether the principal may read an image owned by owner:
// any image unless reads are private, else its own (every one for admins).
func (p Principal) Sees(owner string, privateReads bool) bool {
	return !privateReads || p.Owns(owner)
}

// Owns reports whether the principal may change something owned by owner:
// its owner or an admin.
func (p Principal) Owns(owner string) bool {
	return p.Can(ScopeAdmin) || (owner != "" && owner == p.Actor()) || (owner == "" && p.KeyID == "")
}

type principalKey struct{}

// WithPrincipal returns ctx carrying p.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// FromContext returns the principal in ctx, or an open-mode principal
// (anonymous, every scope) when there is none.
func FromContext(ctx context.Context) Principal {
	if p, ok := ctx.Value(principalKey{}).(Principal); ok {
		return p
	}
	return Principal{Scopes: []string{ScopeAdmin}}
}

// Key is a recorded API key.
type Key struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Scopes    []string  `json:"scopes"`
	Hash      string    `json:"hash"`
	CreatedAt time.Time `json:"created_at"`
	RevokedAt time.Time `json:"revoked_at,omitzero"`
}

// Keys reads and writes the API keys in an event store, caching them and
// reloading when the keys' stream has grown.
type Keys struct {
	store eventstore.Store
	mu    sync.Mutex
	keys  map[string]Key
	seen  int64
	read  time.Time // when the stream was last read
}

// refreshEvery bounds how often the keys' stream is read: a key created or
// revoked by another process takes effect within this time.
const refreshEvery = time.Second

// NewKeys returns the keys of the store.
func NewKeys(store eventstore.Store) *Keys {
	return &Keys{store: store, keys: map[string]Key{}}
}

// Create records a new key and returns it and its secret token, which is
// shown once and never stored.
func (k *Keys) Create(ctx context.Context, name string, scopes []string) (Key, string, error) {
	if name == "" || len(name) > 100 {
		return Key{}, "", errors.New("auth: a key needs a name of at most 100 characters")
	}
	if len(scopes) == 0 {
		return Key{}, "", ErrBadScopes
	}
	for _, s := range scopes {
		if s != ScopeRead && s != ScopeWrite && s != ScopeAdmin {
			return Key{}, "", fmt.Errorf("%w: %q", ErrBadScopes, s)
		}
	}
	id, secret := random(8), random(32)
	key := Key{ID: id, Name: name, Scopes: scopes, Hash: hash(secret), CreatedAt: time.Now().UTC()}
	if err := k.append(ctx, TypeKeyCreated, key); err != nil {
		return Key{}, "", err
	}
	return key, "isk_" + id + "_" + secret, nil
}

// Revoke records that a key may no longer be used.
func (k *Keys) Revoke(ctx context.Context, id string) error {
	keys, err := k.List(ctx)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(keys, func(key Key) bool { return key.ID == id })
	if i < 0 {
		return fmt.Errorf("revoke %q: %w", id, ErrBadKey)
	}
	if !keys[i].RevokedAt.IsZero() {
		return nil
	}
	return k.append(ctx, TypeKeyRevoked, Key{ID: id, RevokedAt: time.Now().UTC()})
}

// List returns every key, oldest first, revoked ones included.
func (k *Keys) List(ctx context.Context) ([]Key, error) {
	if err := k.refresh(ctx); err != nil {
		return nil, err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	out := make([]Key, 0, len(k.keys))
	for _, key := range k.keys {
		out = append(out, key)
	}
	slices.SortFunc(out, func(a, b Key) int { return a.CreatedAt.Compare(b.CreatedAt) })
	return out, nil
}

// Open reports whether no key has been created: the service runs open.
func (k *Keys) Open(ctx context.Context) (bool, error) {
	if err := k.refresh(ctx); err != nil {
		return false, err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.keys) == 0, nil
}

// Authenticate returns the principal of a token.
func (k *Keys) Authenticate(ctx context.Context, token string) (Principal, error) {
	id, secret, ok := parseToken(token)
	if !ok {
		return Principal{}, ErrBadKey
	}
	if err := k.refresh(ctx); err != nil {
		return Principal{}, err
	}
	k.mu.Lock()
	key, found := k.keys[id]
	k.mu.Unlock()
	if !found || subtle.ConstantTimeCompare([]byte(hash(secret)), []byte(key.Hash)) != 1 {
		return Principal{}, ErrBadKey
	}
	if !key.RevokedAt.IsZero() {
		return Principal{}, ErrRevoked
	}
	return Principal{KeyID: key.ID, Name: key.Name, Scopes: key.Scopes}, nil
}

// refresh reads the events of the keys' stream recorded since the last read.
func (k *Keys) refresh(ctx context.Context) error {
	k.mu.Lock()
	seen, fresh := k.seen, time.Since(k.read) < refreshEvery
	k.mu.Unlock()
	if fresh {
		return nil
	}
	events, err := k.store.ReadStream(ctx, Stream, seen, 1000)
	if err != nil {
		return fmt.Errorf("read API keys: %w", err)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.read = time.Now()
	for _, e := range events {
		if e.StreamVersion <= k.seen {
			continue
		}
		var key Key
		if err := json.Unmarshal(e.Data, &key); err != nil {
			return fmt.Errorf("API key event %s: %w", e.ID, err)
		}
		switch e.Type {
		case TypeKeyCreated:
			k.keys[key.ID] = key
		case TypeKeyRevoked:
			if old, ok := k.keys[key.ID]; ok {
				old.RevokedAt = key.RevokedAt
				k.keys[key.ID] = old
			}
		}
		k.seen = e.StreamVersion
	}
	return nil
}

func (k *Keys) append(ctx context.Context, typ string, key Key) error {
	data, err := json.Marshal(key)
	if err != nil {
		return err
	}
	_, err = k.store.Append(ctx, Stream, eventstore.Any, eventstore.NewEvent{
		ID: eventstore.NewEventID(), Type: typ, SchemaVersion: 1, Data: data,
		Metadata: eventstore.Metadata{Actor: "cli:apikey"},
	})
	if err != nil {
		return fmt.Errorf("record API key: %w", err)
	}
	k.mu.Lock()
	k.read = time.Time{} // this process sees its own change at once
	k.mu.Unlock()
	return nil
}

// parseToken splits "isk_<id>_<secret>".
func parseToken(token string) (id, secret string, ok bool) {
	rest, ok := strings.CutPrefix(token, "isk_")
	if !ok {
		return "", "", false
	}
	id, secret, ok = strings.Cut(rest, "_")
	return id, secret, ok && id != "" && len(secret) >= 32
}

func hash(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

var encoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// random returns n random base32 characters.
func random(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return encoding.EncodeToString(b)[:n]
}
