// Command imageservice is the one binary of the image dithering service.
//
// Usage:
//
//	imageservice [command] [flags]
//
// With no command it runs "serve". "imageservice help" lists the commands
// and the configuration variables.
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

// command is one sub-command of the binary.
type command struct {
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

// subcommands returns the sub-commands by name. Each command lives in its own file.
func subcommands() map[string]command {
	return map[string]command{
		"serve":       {"run the service (the default)", runServe},
		"dither":      {"dither an image file offline with the service's engine", runDither},
		"migrate":     {"apply the database migrations and exit", runMigrate},
		"replay":      {"rebuild the read models from the log while replicas keep serving", runReplay},
		"events":      {"print the event log, or one image's events (--image UUID), as JSON lines", runEvents},
		"apikey":      {"manage API keys: create --name N [--scopes read,write,admin], list, revoke ID", runAPIKey},
		"healthcheck": {"exit 0 when the service on this host is ready (GET /readyz), 1 when not; for container health checks", runHealthcheck},
		"help":        {"list the commands and configuration variables", runHelp},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// Libraries that log through the standard log package (cloudinary-go
	// does) write JSON lines like the service.
	slog.SetDefault(newLogger(os.Stderr))
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// run dispatches args to a sub-command and returns the process exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	name := "serve"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		name, args = args[0], args[1:]
	}
	cmd, ok := subcommands()[name]
	if !ok {
		fmt.Fprintf(stderr, "imageservice: unknown command %q (see \"imageservice help\")\n", name)
		return 2
	}
	if err := cmd.run(ctx, args, stdout, stderr); err != nil {
		log := slog.New(slog.NewTextHandler(stderr, nil))
		if name == "serve" {
			log = newLogger(stderr) // the service's log is JSON lines
		}
		log.Error(name+" failed", "err", err)
		return 1
	}
	return 0
}
