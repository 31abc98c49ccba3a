package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"vidmatte/store"
)

func runCmd(t testing.TB, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := dispatch(context.Background(), args, &out, &errb)
	return out.String(), errb.String(), code
}

func TestKeysCommand(t *testing.T) {
	dir := t.TempDir()
	out, errOut, code := runCmd(t, "keys", "create", "--data", dir, "--name", "acme", "--credits", "12.5")
	if code != 0 {
		t.Fatalf("create: %d %s", code, errOut)
	}
	secret := strings.TrimSuffix(out, "\n")
	if strings.Contains(secret, "\n") || !strings.HasPrefix(secret, "vmk_") {
		t.Fatalf("create printed more than the key: %q", out)
	}
	db, err := store.Open(filepath.Join(dir, "vidmatte.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	k, err := db.AuthenticateKey(context.Background(), secret)
	if err != nil || k.Name != "acme" || k.Balance != 12.5 {
		t.Fatalf("created key: %+v %v", k, err)
	}
	out, _, code = runCmd(t, "keys", "list", "--data", dir)
	if code != 0 || !strings.Contains(out, k.ID) || !strings.Contains(out, "12.5") || strings.Contains(out, k.WebhookSecret) {
		t.Fatalf("list: %d %s", code, out)
	}
	out, _, _ = runCmd(t, "keys", "list", "--data", dir, "--show-webhook-secrets")
	if !strings.Contains(out, k.WebhookSecret) {
		t.Fatalf("list --show-webhook-secrets: %s", out)
	}
	out, _, code = runCmd(t, "keys", "webhook-secret", k.ID, "--data", dir)
	if code != 0 || strings.TrimSpace(out) != k.WebhookSecret {
		t.Fatalf("webhook-secret: %d %q", code, out)
	}
	out, _, code = runCmd(t, "keys", "grant", k.Prefix, "--data", dir, "--credits", "7.5")
	if code != 0 || !strings.Contains(out, "balance 20") {
		t.Fatalf("grant by prefix: %d %s", code, out)
	}
	if _, _, code = runCmd(t, "keys", "revoke", k.ID, "--data", dir); code != 0 {
		t.Fatalf("revoke: %d", code)
	}
	if _, err := db.AuthenticateKey(context.Background(), secret); err == nil {
		t.Fatal("a revoked key still authenticates")
	}
	for _, args := range [][]string{
		{"keys"}, {"keys", "create", "--data", dir}, {"keys", "grant", k.ID, "--data", dir},
		{"keys", "revoke", "--data", dir}, {"keys", "frobnicate"}, {"keys", "create", "--data", dir, "--name", "x", "--credits", "-1"},
	} {
		if _, _, code := runCmd(t, args...); code != 2 {
			t.Fatalf("%v: exit %d, want 2", args, code)
		}
	}
	if _, _, code := runCmd(t, "keys", "revoke", "key_unknown", "--data", dir); code != 1 {
		t.Fatalf("revoking an unknown key: exit %d", code)
	}
}
