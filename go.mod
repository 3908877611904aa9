module github.com/imageservice/imageservice

go 1.26.0
