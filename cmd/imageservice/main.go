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
	"errors"
	"flag"
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
	// noArgs marks a command that takes no flags or arguments: run
	// answers -h and --help for it, and refuses anything else.
	noArgs bool
}

// usageError is a command line a command cannot use. The flag package
// has printed it, with the command's usage, already.
type usageError struct{ error }

// parseFlags parses args with fs, whose errors and usage go to stderr:
// flag.ErrHelp after -h, a usageError for flags it does not know.
func parseFlags(fs *flag.FlagSet, args []string) error {
	err := fs.Parse(args)
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		return usageError{err}
	}
	return err
}

// isHelp reports whether arg asks for help.
func isHelp(arg string) bool { return arg == "-h" || arg == "-help" || arg == "--help" }

// subcommands returns the sub-commands by name. Each command lives in its own file.
func subcommands() map[string]command {
	return map[string]command{
		"serve":       {"run the service (the default)", runServe, true},
		"dither":      {"dither an image file offline with the service's engine", runDither, false},
		"migrate":     {"apply the database migrations and exit", runMigrate, true},
		"replay":      {"rebuild the read models from the log while replicas keep serving", runReplay, true},
		"events":      {"print the event log, or one image's events (--image UUID), as JSON lines", runEvents, false},
		"apikey":      {"manage API keys: create --name N [--scopes read,write,admin], list, revoke ID", runAPIKey, false},
		"healthcheck": {"exit 0 when the service on this host is ready (GET /readyz), 1 when not; for container health checks", runHealthcheck, false},
		"help":        {"list the commands and configuration variables", runHelp, true},
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
	switch {
	case len(args) > 0 && isHelp(args[0]):
		name, args = "help", nil
	case len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-':
		name, args = args[0], args[1:]
	}
	cmd, ok := subcommands()[name]
	if !ok {
		fmt.Fprintf(stderr, "imageservice: unknown command %q (see \"imageservice help\")\n", name)
		return 2
	}
	if cmd.noArgs && len(args) > 0 {
		if isHelp(args[0]) {
			fmt.Fprintf(stdout, "Usage: imageservice %s\n\n%s.\nIt takes no flags; \"imageservice help\" lists the configuration variables.\n", name, cmd.summary)
			return 0
		}
		fmt.Fprintf(stderr, "imageservice %s takes no flags or arguments, got %q (see \"imageservice help\")\n", name, args)
		return 2
	}
	err := cmd.run(ctx, args, stdout, stderr)
	var usage usageError
	switch {
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &usage):
		return 2
	case err != nil:
		log := slog.New(slog.NewTextHandler(stderr, nil))
		if name == "serve" {
			log = newLogger(stderr) // the service's log is JSON lines
		}
		log.Error(name+" failed", "err", err)
		return 1
	}
	return 0
}
