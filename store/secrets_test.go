package store

import (
	"bytes"
	"context"
	"testing"
)

// Every handle on a store gets the same secret of a name, made once; other
// names get other secrets.
func TestSecretIsSharedAndKept(t *testing.T) {
	ctx := context.Background()
	dsn := testDSN(t)
	a, b := openAt(t, dsn), openAt(t, dsn)
	defer a.Close()
	defer b.Close()
	s1, err := a.Secret(ctx, "output-urls", 32)
	must(t, err)
	s2, err := b.Secret(ctx, "output-urls", 32)
	must(t, err)
	other, err := b.Secret(ctx, "other", 32)
	must(t, err)
	if len(s1) != 32 || !bytes.Equal(s1, s2) || bytes.Equal(s1, other) {
		t.Fatalf("secrets: %x %x %x", s1, s2, other)
	}
	if _, err := a.Secret(ctx, "short", 8); err == nil {
		t.Fatal("a short secret was made")
	}
}
