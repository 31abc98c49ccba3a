package store

import (
	"context"
	"reflect"
	"testing"

	"vidmatte"
)

// A job charges the seconds it processed: a video that turned out shorter
// than its container declared gives the rest of its reservation back, in
// the completion's own transaction, with one charge row; a whole video (or
// an unknown count) charges the reservation.
func TestCompleteChargesWhatWasProcessed(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name        string
		frames      int64
		wantCharged float64
		wantRows    []string
	}{
		{"a fifth of the frames", 60, 3, []string{"reserve:13000", "charge:3000"}},
		{"every frame", 300, 13, []string{"reserve:13000", "charge:13000"}},
		{"more than probed", 320, 13, []string{"reserve:13000", "charge:13000"}},
		{"unknown", 0, 13, []string{"reserve:13000", "charge:13000"}},
		{"one frame", 1, 1, []string{"reserve:13000", "charge:1000"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := openTest(t)
			k, _ := newKey(t, db, 100)
			j := createJob(t, db, k.ID, 13, true) // 12.5 s, 300 frames: 13 s reserved at 1 credit/s
			claimOne(t, db, j.ID)
			done, err := db.CompleteJob(ctx, leaseOf(t, db, j.ID), vidmatte.JobOutput{Path: "/out/x.webm", Size: 4096, Frames: tc.frames})
			must(t, err)
			if done.Credits != tc.wantCharged || done.OutputSize != 4096 || done.BillingStatus != vidmatte.BillingCharged {
				t.Fatalf("completed: credits %v (want %v), size %d, %s", done.Credits, tc.wantCharged, done.OutputSize, done.BillingStatus)
			}
			if b := balance(t, db, k.ID); b != 100-tc.wantCharged {
				t.Fatalf("balance %v, want %v", b, 100-tc.wantCharged)
			}
			if rows := ledgerRows(t, db, j.ID); !reflect.DeepEqual(rows, tc.wantRows) {
				t.Fatalf("ledger %v, want %v", rows, tc.wantRows)
			}
			h, err := db.KeyHoldings(ctx, k.ID)
			must(t, err)
			if h.StoredBytes != 4096 {
				t.Fatalf("stored bytes %d: the output counts against the key", h.StoredBytes)
			}
		})
	}
}
