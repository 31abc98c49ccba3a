package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"text/tabwriter"
	"time"

	"vidmatte/store"
)

func init() {
	register(command{
		name:    "keys",
		summary: "create, list, revoke API keys and grant them credits",
		run:     runKeys,
	})
}

const keysUsage = `usage: vidmatte keys <subcommand> [flags]

  create --name NAME --credits C   make a key; prints only the key itself
  list [--show-webhook-secrets]    list keys with their balances
  revoke ID                        revoke a key (ID or key prefix)
  grant ID --credits C             add credits to a key
  webhook-secret ID                print the secret that signs a key's webhooks

Every subcommand takes --data DIR and --config FILE (or $VIDMATTE_DATA,
$VIDMATTE_CONFIG) to find the daemon's database.
`

func runKeys(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, keysUsage)
		if len(args) == 0 {
			return usageErrorf("a subcommand is needed")
		}
		return nil
	}
	sub, args := args[0], args[1:]
	fs := newFlagSet("keys "+sub, stderr)
	cf := bindConfigFlags(fs, false)
	var name *string
	var credits *float64
	var showSecrets *bool
	switch sub {
	case "create":
		name = fs.String("name", "", "a name for the key (required)")
		credits = fs.Float64("credits", 0, "credits to grant at creation")
	case "grant":
		credits = fs.Float64("credits", 0, "credits to add (required, positive)")
	case "list":
		showSecrets = fs.Bool("show-webhook-secrets", false, "also print each key's webhook secret")
	case "revoke", "webhook-secret":
	default:
		fmt.Fprint(stderr, keysUsage)
		return usageErrorf("unknown subcommand %q", sub)
	}
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	cfg, err := cf.load(os.Getenv)
	if err != nil {
		return err
	}
	needID := sub == "revoke" || sub == "grant" || sub == "webhook-secret"
	if needID && len(pos) != 1 {
		return usageErrorf("keys %s needs one key ID", sub)
	}
	if !needID && len(pos) != 0 {
		return usageErrorf("keys %s takes no arguments", sub)
	}
	db, err := openStore(cfg)
	if err != nil {
		return err
	}
	defer db.Close()

	switch sub {
	case "create":
		if *name == "" {
			return usageErrorf("--name is required")
		}
		if *credits < 0 {
			return usageErrorf("--credits must not be negative")
		}
		_, secret, err := db.CreateKey(ctx, *name, *credits)
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, secret)
	case "list":
		keys, err := db.ListKeys(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		header := "ID\tNAME\tPREFIX\tBALANCE\tCREATED\tREVOKED"
		if *showSecrets {
			header += "\tWEBHOOK SECRET"
		}
		fmt.Fprintln(tw, header)
		for _, k := range keys {
			revoked := "-"
			if k.RevokedAt != nil {
				revoked = k.RevokedAt.UTC().Format(time.RFC3339)
			}
			line := fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%s", k.ID, k.Name, k.Prefix, formatCredits(k.Balance),
				k.CreatedAt.UTC().Format(time.RFC3339), revoked)
			if *showSecrets {
				line += "\t" + k.WebhookSecret
			}
			fmt.Fprintln(tw, line)
		}
		return tw.Flush()
	case "revoke":
		k, err := db.FindKey(ctx, pos[0])
		if err != nil {
			return err
		}
		if err := db.RevokeKey(ctx, k.ID); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "revoked %s (%s)\n", k.ID, k.Name)
	case "grant":
		if *credits <= 0 {
			return usageErrorf("--credits must be positive")
		}
		k, err := db.FindKey(ctx, pos[0])
		if err != nil {
			return err
		}
		k, err = db.GrantCredits(ctx, k.ID, *credits)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s balance %s\n", k.ID, formatCredits(k.Balance))
	case "webhook-secret":
		k, err := db.FindKey(ctx, pos[0])
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, k.WebhookSecret)
	}
	return nil
}

// openStore opens (creating) the database of a data dir.
// openStore opens the configured job store: PostgreSQL when the store
// setting is a postgres:// URL, else the SQLite file of the data dir.
func openStore(cfg serveConfig) (*store.DB, error) {
	if cfg.Store != "" && cfg.Store != "sqlite" {
		return store.OpenPostgres(context.Background(), cfg.Store)
	}
	if err := os.MkdirAll(cfg.Data, 0o750); err != nil {
		return nil, err
	}
	return store.Open(filepath.Join(cfg.Data, "vidmatte.db"))
}

func formatCredits(c float64) string { return strconv.FormatFloat(c, 'f', -1, 64) }
