package commands_test

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/png"
	"testing"

	"github.com/google/uuid"

	"github.com/imageservice/imageservice/commands"
	"github.com/imageservice/imageservice/eventstore"
	espg "github.com/imageservice/imageservice/eventstore/postgres"
	"github.com/imageservice/imageservice/images"
	"github.com/imageservice/imageservice/internal/teststores"
)

// TestCommandsRefuseStreamsWithNewerEvents: a command on an image whose
// stream holds an event this build cannot read (a newer build wrote it)
// refuses with ErrNewerEvents and appends nothing, rather than decide on
// a state without that event; so do reads that replay the stream.
func TestCommandsRefuseStreamsWithNewerEvents(t *testing.T) {
	for _, c := range []struct {
		name string
		ev   eventstore.NewEvent
		want error
	}{
		{"unknown type", rawEvent("ImageArchived", 1, `{}`), images.ErrUnknownEventType},
		{"newer schema version", rawEvent(images.TypeImageDeleted, images.ImageDeletedVersion+1, `{}`), images.ErrUnknownSchemaVersion},
	} {
		t.Run(c.name, func(t *testing.T) {
			store, cmds := newService(t)
			ctx := context.Background()
			res, err := cmds.Upload(ctx, commands.UploadInput{Body: bytes.NewReader(pngBytes(t)), Filename: "a.png", NoDither: true})
			if err != nil {
				t.Fatal(err)
			}
			id := res.Image.ID
			if _, err := store.Append(ctx, images.StreamID(id), eventstore.Exact(1), c.ev); err != nil {
				t.Fatal(err)
			}
			refused := func(what string, err error) {
				t.Helper()
				if !errors.Is(err, commands.ErrNewerEvents) || !errors.Is(err, c.want) {
					t.Errorf("%s: %v, want ErrNewerEvents and %v", what, err, c.want)
				}
			}
			_, _, err = cmds.RequestDither(ctx, commands.DitherInput{ImageID: id, Options: images.DitherInput{Levels: 2}})
			refused("request a dither", err)
			_, err = cmds.Delete(ctx, id, eventstore.Metadata{})
			refused("delete", err)
			_, err = cmds.Load(ctx, id)
			refused("load", err)
			if img, err := cmds.LoadAt(ctx, id, 1); err != nil || img.Version != 1 {
				t.Errorf("load at version 1, before the event: %+v, %v", img, err)
			}
			if events, err := cmds.History(ctx, id, 0, 10); err != nil || len(events) != 2 {
				t.Errorf("history after the refused commands: %d events, %v; want the two appended", len(events), err)
			}
		})
	}
}

func newService(t *testing.T) (*espg.Store, *commands.Service) {
	t.Helper()
	pg := teststores.NewPostgres(t, espg.Options{})
	return pg.Store, commands.New(commands.Postgres{Store: pg.Store, Blobs: pg.Blobs}, commands.Options{})
}

func pngBytes(t *testing.T) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, image.NewGray(image.Rect(0, 0, 4, 4))); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func rawEvent(typ string, v int, data string) eventstore.NewEvent {
	return eventstore.NewEvent{ID: uuid.Must(uuid.NewV7()), Type: typ, SchemaVersion: v, Data: []byte(data)}
}
