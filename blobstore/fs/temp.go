package fs

import (
	"errors"
	"fmt"
	iofs "io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Temporary files: Put writes a blob's content to <root>/.tmp/put-* and its
// sidecar to <root>/.tmp/meta-*, then renames them into place, and removes
// them itself when it fails. A process that dies in between leaves them
// behind for good; RemoveTemp removes them.

// The name prefixes of the store's temporary files: content and sidecars.
const (
	putPrefix  = "put-"
	metaPrefix = "meta-"
)

// tempPrefixes are the name prefixes of the store's temporary files.
var tempPrefixes = []string{putPrefix, metaPrefix}

// RemoveTemp removes every temporary file under <root>/.tmp, the leftovers
// of Puts cut short by a crash, and returns how many files and bytes it
// removed. Files of other names, and directories, are left alone.
//
// It is safe only when no other process is in the middle of a Put into
// the same directory, and must be called before this process Puts: it
// removes the files of Puts in progress too (their rename would fail, and
// the Put with it). New does not call it, since the service's admin
// commands (migrate, replay, apikey, ...) open the embedded default's
// store while the server may be running and putting; the server calls it
// when it opens the store, before it serves. That is the one process that
// may put into the directory: the embedded default runs as one process
// (its SQLite event store is for one process, and purging, see the
// package documentation, needs it too), and nothing else puts, so every
// file present then is older than the process and belongs to none
// running. An age-based rule could spare files of other processes, but
// nothing bounds how long a Put's temporary file goes unmodified (a slow
// upload feeds it as the client sends), so it would have to keep
// leftovers for an arbitrary while.
func (s *Store) RemoveTemp() (files int, bytes int64, err error) {
	entries, err := os.ReadDir(s.tmp)
	if err != nil {
		return 0, 0, fmt.Errorf("remove temporary files in %s: %w", s.tmp, err)
	}
	var errs []error
	for _, e := range entries {
		if !e.Type().IsRegular() || !isTempName(e.Name()) {
			continue
		}
		fi, err := e.Info()
		if errors.Is(err, iofs.ErrNotExist) {
			continue
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if err := os.Remove(filepath.Join(s.tmp, e.Name())); err != nil {
			if !errors.Is(err, iofs.ErrNotExist) {
				errs = append(errs, err)
			}
			continue
		}
		files++
		bytes += fi.Size()
	}
	if err := errors.Join(errs...); err != nil {
		return files, bytes, fmt.Errorf("remove temporary files in %s: %w", s.tmp, err)
	}
	return files, bytes, nil
}

// isTempName reports whether name is that of one of the store's
// temporary files.
func isTempName(name string) bool {
	for _, p := range tempPrefixes {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}
