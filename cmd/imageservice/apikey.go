package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/imageservice/imageservice/auth"
	"github.com/imageservice/imageservice/eventstore"
	espg "github.com/imageservice/imageservice/eventstore/postgres"
)

const apikeyUsage = "Usage: imageservice apikey create --name NAME [--scopes read,write,admin] | list | revoke ID"

// runAPIKey manages API keys: create, list, revoke.
func runAPIKey(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && isHelp(args[0]) {
		fmt.Fprintln(stdout, apikeyUsage)
		return nil
	}
	if len(args) == 0 {
		fmt.Fprintln(stderr, apikeyUsage)
		return usageError{errors.New("apikey needs an action")}
	}
	store, closeStore, err := openStore(ctx)
	if err != nil {
		return err
	}
	defer closeStore()
	keys := auth.NewKeys(store)
	switch args[0] {
	case "create":
		return createKey(ctx, keys, args[1:], stdout, stderr)
	case "list":
		return listKeys(ctx, keys, stdout)
	case "revoke":
		if len(args) != 2 {
			return errors.New("usage: imageservice apikey revoke ID")
		}
		if err := keys.Revoke(ctx, args[1]); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "revoked %s\n", args[1])
		return nil
	}
	return fmt.Errorf("apikey: unknown action %q (create, list or revoke)", args[0])
}

func createKey(ctx context.Context, keys *auth.Keys, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("apikey create", flag.ContinueOnError)
	fs.SetOutput(stderr)
	name := fs.String("name", "", "a name for the key (who or what uses it)")
	scopes := fs.String("scopes", "read,write", "comma-separated scopes: read, write, admin")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "apikey create takes no arguments, got %q\n", fs.Args())
		return usageError{errors.New("apikey create takes no arguments")}
	}
	key, token, err := keys.Create(ctx, *name, strings.Split(*scopes, ","))
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "created key %s (%s) with scopes %s\n%s\nThe key is shown once; only its hash is stored.\n",
		key.ID, key.Name, strings.Join(key.Scopes, ","), token)
	return nil
}

func listKeys(ctx context.Context, keys *auth.Keys, stdout io.Writer) error {
	list, err := keys.List(ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tSCOPES\tCREATED\tREVOKED")
	for _, k := range list {
		revoked := "-"
		if !k.RevokedAt.IsZero() {
			revoked = k.RevokedAt.Format("2006-01-02 15:04")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", k.ID, k.Name, strings.Join(k.Scopes, ","), k.CreatedAt.Format("2006-01-02 15:04"), revoked)
	}
	return tw.Flush()
}

// openStore opens the configured event store: PostgreSQL, or the
// embedded default's SQLite.
func openStore(ctx context.Context) (eventstore.Store, func(), error) {
	if store, closeStore, err := embedded(ctx); err != nil || store != nil {
		return store, closeStore, err
	}
	pool, err := openDatabase(ctx)
	if err != nil {
		return nil, nil, err
	}
	if err := espg.Migrate(ctx, pool); err != nil {
		pool.Close()
		return nil, nil, err
	}
	store := espg.Open(pool, espg.Options{})
	return store, func() { store.Close(); pool.Close() }, nil
}
