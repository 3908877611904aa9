package graph

import (
	"encoding/json"
	"strings"

	"github.com/imageservice/imageservice/eventstore"
	"github.com/imageservice/imageservice/graph/model"
	"github.com/imageservice/imageservice/images"
	"github.com/imageservice/imageservice/projections"
)

// imageModel returns the GraphQL image of a read model.
func imageModel(i projections.Image) *model.Image {
	return &model.Image{
		ID: i.ID.String(), UUID: i.ID, Filename: i.Filename, ContentType: i.ContentType,
		ByteSize: i.ByteSize, Width: i.Width, Height: i.Height, Sha256: i.SHA256,
		Status: model.ImageStatus(i.Status), CreatedAt: i.CreatedAt, Version: i.Version, CloudURL: i.URL,
		Owner: i.Owner,
	}
}

// stateModel returns the GraphQL image of an image's replayed state, with
// its dithers at hand.
func stateModel(s images.Image) *model.Image {
	img := imageModel(projections.ImageFromState(s))
	img.Dithers = make([]*model.Dither, 0, len(s.Dithers))
	for i, d := range projections.DithersFromState(s) {
		m := ditherModel(d)
		if i < len(s.Dithers) && s.Dithers[i].ID == d.ID {
			m.KnownNotifications = notificationModels(s.Dithers[i])
		}
		img.Dithers = append(img.Dithers, m)
	}
	return img
}

// ditherModel returns the GraphQL dither of a read model.
func ditherModel(d projections.Dither) *model.Dither {
	o := d.Options
	m := &model.Dither{
		ID: d.ID.String(), UUID: d.ID, ImageID: d.ImageID, Levels: o.Levels,
		Algorithm:  model.DitherAlgorithm(strings.ToUpper(strings.ReplaceAll(o.Algorithm, "-", "_"))),
		Serpentine: o.Serpentine, Strength: o.Strength, ColorSpace: model.ColorSpace(strings.ToUpper(o.ColorSpace)),
		Grayscale: o.Grayscale, Status: model.DitherStatus(d.Status), RequestedAt: d.RequestedAt,
		CompletedAt: d.CompletedAt, ResultKey: d.ResultKey, CloudURL: d.URL,
	}
	if o.ChannelLevels != nil {
		m.ChannelLevels = &model.ChannelLevels{R: o.ChannelLevels.R, G: o.ChannelLevels.G, B: o.ChannelLevels.B}
	}
	if o.Palette != "" {
		m.Palette = &o.Palette
	}
	if d.Error != "" {
		m.Error = &d.Error
	}
	if d.Status == images.DitherStatusCompleted {
		m.DurationMs, m.ByteSize = &d.DurationMs, &d.ByteSize
		m.Width, m.Height, m.Colours = &d.Width, &d.Height, &d.Colours
	} else if d.Status == images.DitherStatusFailed {
		m.DurationMs = &d.DurationMs
	}
	return m
}

// eventModel returns the GraphQL event of a recorded event, its
// notification targets redacted (images.ShownData).
func eventModel(e eventstore.Event) *model.Event {
	meta, _ := json.Marshal(e.Metadata)
	return &model.Event{
		ID: e.ID.String(), Position: e.Position.String(), StreamVersion: e.StreamVersion,
		Type: e.Type, SchemaVersion: e.SchemaVersion, RecordedAt: e.RecordedAt,
		Data: model.JSON(images.ShownData(e.Type, e.Data)), Metadata: model.JSON(meta),
	}
}

// ditherInput turns the GraphQL dither options into the domain's.
func ditherInput(o *model.DitherOptions) images.DitherInput {
	if o == nil {
		return images.DitherInput{}
	}
	in := images.DitherInput{Strength: o.Strength}
	if o.Levels != nil {
		in.Levels = *o.Levels
	}
	if o.ChannelLevels != nil {
		in.ChannelLevels = &images.ChannelLevels{R: o.ChannelLevels.R, G: o.ChannelLevels.G, B: o.ChannelLevels.B}
	}
	if o.Algorithm != nil {
		in.Algorithm = images.NormalizeAlgorithm(string(*o.Algorithm))
	}
	if o.Serpentine != nil {
		in.Serpentine = *o.Serpentine
	}
	if o.ColorSpace != nil {
		in.ColorSpace = strings.ToLower(string(*o.ColorSpace))
	}
	if o.Grayscale != nil {
		in.Grayscale = *o.Grayscale
	}
	if o.Palette != nil {
		in.Palette = *o.Palette
	}
	return in
}

// notificationModels returns a dither's notifications: one per channel
// asked for, PENDING until an outcome is recorded.
func notificationModels(d images.Dither) []model.Notification {
	out := []model.Notification{}
	for _, ch := range d.Notify.Channels() {
		n := model.Notification{Channel: model.NotificationChannel(strings.ToUpper(ch)),
			Status: model.NotificationStatusPending, Target: d.Notify.Target(ch)}
		if rec, ok := d.Notification(ch); ok {
			n.Status, n.Target = model.NotificationStatus(rec.Status), rec.Target
			if rec.Error != "" {
				n.Error = &rec.Error
			}
			if rec.Status == images.NotifySent {
				n.SentAt = &rec.At
			}
		}
		out = append(out, n)
	}
	return out
}

// notifyInput turns the GraphQL notify input into the domain's.
func notifyInput(n *model.NotifyInput) images.Notify {
	var out images.Notify
	if n == nil {
		return out
	}
	if n.Email != nil {
		out.Email = *n.Email
	}
	if n.WebhookURL != nil {
		out.WebhookURL = *n.WebhookURL
	}
	return out
}
