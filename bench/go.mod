module github.com/imageservice/imageservice/bench

go 1.26.0

require github.com/imageservice/imageservice v0.0.0

require (
	github.com/makeworld-the-better-one/dither/v2 v2.4.0
	golang.org/x/image v0.48.0 // indirect
)

replace github.com/imageservice/imageservice => ../
