// Package images is the domain of the image service: the events of an image
// stream ("image-<uuid>"), their versioned JSON, the state folded from them
// (Evolve, Replay) and the decisions that turn commands into new events
// (Upload, RequestDither, CompleteDither, FailDither, MarkSynced,
// MarkDitherSynced, FailSync, Delete).
//
// Everything here is pure: no I/O, no clocks read when a time is given, no
// randomness. Decisions return the events to append or a *Error that the API
// maps to a user error. The same Evolve serves projections and point-in-time
// replays.
//
// Event payloads never hold image bytes, only blob keys (lowercase hex
// SHA-256 of the content).
package images
