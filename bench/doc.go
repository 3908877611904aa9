// Package bench compares the imageservice dither engine with peers: the
// makeworld-the-better-one/dither library and the standard library's
// image/draw Floyd-Steinberg. It is its own module so that the peers never
// become dependencies of the service.
//
// Run the benchmarks, and print the ratios, with:
//
//	go test -run TestPrintRatios -v
//	go test -run XXX -bench . -benchtime 3x
package bench
