package graph

import (
	"context"
	"fmt"

	"github.com/google/uuid"

	"github.com/imageservice/imageservice/commands"
	"github.com/imageservice/imageservice/graph/model"
	"github.com/imageservice/imageservice/images"
)

func (r *Resolver) uploadImage(ctx context.Context, in model.UploadImageInput) (*model.UploadImagePayload, error) {
	filename := in.File.Filename
	if in.Filename != nil && *in.Filename != "" {
		filename = *in.Filename
	}
	cmd := commands.UploadInput{
		Body: in.File.File, Filename: filename, NoDither: in.AutoDither != nil && !*in.AutoDither,
		Metadata: metadata(ctx, in.IdempotencyKey), Notify: notifyInput(in.Notify),
	}
	if in.IdempotencyKey != nil {
		cmd.IdempotencyKey = *in.IdempotencyKey
	}
	if in.Dither != nil {
		if ue := givenLevels("dither.levels", in.Dither.Levels); ue != nil {
			return &model.UploadImagePayload{UserErrors: ue}, nil
		}
		opts := ditherInput(in.Dither)
		cmd.Dither = &opts
	}
	res, err := r.Commands.Upload(ctx, cmd)
	ue, err := userErrors(err)
	if err != nil || len(ue) > 0 {
		return &model.UploadImagePayload{UserErrors: ue}, err
	}
	img := stateModel(res.Image)
	payload := &model.UploadImagePayload{Image: img, UserErrors: ue}
	if len(img.Dithers) > 0 {
		payload.Dither = img.Dithers[0]
	}
	return payload, nil
}

func (r *Resolver) requestDither(ctx context.Context, in model.RequestDitherInput) (*model.RequestDitherPayload, error) {
	id, err := uuid.Parse(in.ImageID)
	if err != nil {
		return &model.RequestDitherPayload{UserErrors: userError("imageId", images.CodeInvalidInput, "imageId is not a valid id")}, nil
	}
	if ue := givenLevels("levels", in.Levels); ue != nil {
		return &model.RequestDitherPayload{UserErrors: ue}, nil
	}
	cmd := commands.DitherInput{
		ImageID: id, Metadata: metadata(ctx, in.IdempotencyKey), Notify: notifyInput(in.Notify),
		Options: ditherInput(&model.DitherOptions{
			Levels: in.Levels, ChannelLevels: in.ChannelLevels, Algorithm: in.Algorithm, Serpentine: in.Serpentine,
			Strength: in.Strength, ColorSpace: in.ColorSpace, Grayscale: in.Grayscale, Palette: in.Palette,
		}),
	}
	if in.IdempotencyKey != nil {
		cmd.IdempotencyKey = *in.IdempotencyKey
	}
	res, ditherID, err := r.Commands.RequestDither(ctx, cmd)
	ue, err := userErrors(err)
	if err != nil || len(ue) > 0 {
		return &model.RequestDitherPayload{UserErrors: ue}, err
	}
	img := stateModel(res.Image)
	payload := &model.RequestDitherPayload{Image: img, UserErrors: ue}
	for _, d := range img.Dithers {
		if d.UUID == ditherID {
			payload.Dither = d
		}
	}
	return payload, nil
}

func (r *Resolver) deleteImage(ctx context.Context, in model.DeleteImageInput) (*model.DeleteImagePayload, error) {
	id, err := uuid.Parse(in.ID)
	if err != nil {
		return &model.DeleteImagePayload{UserErrors: userError("id", images.CodeInvalidInput, "id is not a valid id")}, nil
	}
	_, err = r.Commands.Delete(ctx, id, metadata(ctx, nil))
	ue, err := userErrors(err)
	if err != nil || len(ue) > 0 {
		return &model.DeleteImagePayload{UserErrors: ue}, err
	}
	deleted := id.String()
	return &model.DeleteImagePayload{DeletedImageID: &deleted, UserErrors: ue}, nil
}

// notifications resolves Dither.notifications, replaying the image's
// stream (once per query) when the dither came from a read model, which
// keeps no notifications.
func (r *Resolver) notifications(ctx context.Context, d *model.Dither) ([]model.Notification, error) {
	if d.KnownNotifications != nil {
		return d.KnownNotifications, nil
	}
	img, err := r.loadState(ctx, d.ImageID)
	if err != nil {
		return nil, fmt.Errorf("notifications of dither %s: %w", d.UUID, err)
	}
	state, ok := img.Dither(d.UUID)
	if !ok {
		return []model.Notification{}, nil
	}
	return notificationModels(state), nil
}

// givenLevels refuses levels the client gave that are out of range,
// 0 included, which the domain would take for "the default".
func givenLevels(field string, levels *int) []model.UserError {
	if levels == nil {
		return nil
	}
	if ue, _ := userErrors(images.CheckLevels(field, *levels)); len(ue) > 0 {
		return ue
	}
	return nil
}
