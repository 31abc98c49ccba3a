package store

import (
	"context"
	"testing"
	"time"
)

// Of the daemons asking for a periodic turn, one gets it per period.
func TestTakeTurnOncePerPeriod(t *testing.T) {
	ctx := context.Background()
	dsn := testDSN(t)
	a, b := openAt(t, dsn), openAt(t, dsn)
	defer a.Close()
	defer b.Close()
	gotA, err := a.TakeTurn(ctx, "retention", "a", time.Hour)
	must(t, err)
	gotB, err := b.TakeTurn(ctx, "retention", "b", time.Hour)
	must(t, err)
	if !gotA || gotB {
		t.Fatalf("turns: a %v b %v, want only a", gotA, gotB)
	}
	other, err := b.TakeTurn(ctx, "usage", "b", time.Hour)
	must(t, err)
	if !other {
		t.Fatal("another name's turn was refused")
	}
	// The period passes.
	_, err = a.w.Exec("UPDATE periodic SET next_at = 0 WHERE name = 'retention'")
	must(t, err)
	gotB, err = b.TakeTurn(ctx, "retention", "b", time.Hour)
	must(t, err)
	if !gotB {
		t.Fatal("the next period's turn was refused")
	}
}
