package projections

import "context"

// BlobUse counts the images that use a blob, as their original or as a
// dither's result (an image that uses it both ways counts once).
type BlobUse struct {
	// Live counts the images that are not deleted.
	Live int
	// Deleted counts the deleted ones.
	Deleted int
}

// Withdrawn reports whether every image that used the blob is deleted,
// and at least one did: its bytes must no longer be served. A blob that
// no image uses yet (an upload the model has not folded in) is not
// withdrawn.
func (u BlobUse) Withdrawn() bool { return u.Live == 0 && u.Deleted > 0 }

// BlobUser is a read model that can tell which images use a blob.
type BlobUser interface {
	// BlobUse counts the images using the blob with this key.
	BlobUse(ctx context.Context, key string) (BlobUse, error)
}
