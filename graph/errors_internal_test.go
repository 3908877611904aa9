package graph

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"

	"github.com/imageservice/imageservice/commands"
	"github.com/imageservice/imageservice/images"
)

// A command refused because the image holds events of a newer build is
// presented as the service being upgraded, not as an internal error.
func TestPresentNewerEventsAsUnavailable(t *testing.T) {
	err := resolverFailed{fmt.Errorf("load image x: %w: %w", commands.ErrNewerEvents, images.ErrUnknownSchemaVersion)}
	got := presentError(slog.New(slog.NewTextHandler(io.Discard, nil)))(context.Background(), err)
	if got.Extensions["code"] != codeUnavailable || got.Message != commands.ErrNewerEvents.Error() {
		t.Errorf("presented as %q %v, want %s and the upgrade message", got.Message, got.Extensions, codeUnavailable)
	}
}
