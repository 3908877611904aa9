package images_test

import (
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/imageservice/imageservice/images"
)

// An image's life: decide each command against the current state, fold the
// new events in, and store them (here: a slice) with their stream version.
func Example() {
	imageID := uuid.MustParse("0193a0a0-0000-7000-8000-000000000001")
	ditherID := uuid.MustParse("0193a0a0-0000-7000-8000-0000000000d1")
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

	var (
		state images.Image
		log   []images.Recorded
	)
	apply := func(events []images.Event, err error) {
		if err != nil {
			fmt.Println("refused:", err)
			return
		}
		for _, e := range events {
			meta := images.EventMeta{StreamVersion: state.Version + 1, RecordedAt: now}
			log = append(log, images.Recorded{Event: e, Meta: meta})
			state = images.Evolve(state, e, meta)
		}
	}

	apply(images.Upload(images.UploadImage{
		ImageID: imageID, Filename: "../holiday.png", ContentType: "image/png",
		ByteSize: 2048, Width: 32, Height: 32, SHA256: strings.Repeat("a", 64), Now: now,
		Dither: &images.DitherInput{Levels: 4, Algorithm: "ATKINSON"}, DitherID: ditherID,
	}))
	apply(images.RequestDither(state, images.DitherRequest{
		DitherID: uuid.New(), Options: images.DitherInput{Levels: 1000}}))
	apply(images.CompleteDither(state, images.DitherResult{
		DitherID: ditherID, ResultKey: strings.Repeat("b", 64), ByteSize: 512,
		Width: 32, Height: 32, Colours: 64, DurationMs: 3, CompletedAt: now}))

	fmt.Println(images.StreamID(state.ID), "version", state.Version)
	fmt.Println(state.Filename, state.Status)
	d := state.Dithers[0]
	fmt.Println(d.Options.Algorithm, d.Options.Levels, d.Status)

	typ, v, data, _ := images.Marshal(log[1].Event)
	fmt.Println(typ, v, string(data))
	fmt.Println(images.Replay(log[:2]...).Dithers[0].Status)
	// Output:
	// refused: INVALID_LEVELS: levels: levels must be between 2 and 256, got 1000
	// image-0193a0a0-0000-7000-8000-000000000001 version 3
	// holiday.png ACTIVE
	// atkinson 4 COMPLETED
	// DitherRequested 2 {"dither_id":"0193a0a0-0000-7000-8000-0000000000d1","levels":4,"algorithm":"atkinson","serpentine":false,"strength":1,"color_space":"linear","grayscale":false,"requested_at":"2025-01-02T03:04:05Z"}
	// PENDING
}
