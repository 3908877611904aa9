-- +goose Up
-- BlobUse finds the images that use a blob, as original or as a result.
CREATE INDEX image_view_sha256_idx ON image_view (sha256);
CREATE INDEX dither_view_result_key_idx ON dither_view (result_key) WHERE result_key <> '';

-- +goose Down
DROP INDEX dither_view_result_key_idx;
DROP INDEX image_view_sha256_idx;
