package store

import (
	"context"
	"testing"

	"vidmatte"
)

// BenchmarkClaimJobs measures claiming one queued job at a time (one write
// transaction with its transition row, fsync'd) from a queue of b.N jobs.
func BenchmarkClaimJobs(b *testing.B) {
	ctx := context.Background()
	db := openTest(b)
	k, _ := newKey(b, db, 1e9)
	for i := 0; i < b.N; i++ {
		createJob(b, db, k.ID, 1, true)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		js, err := db.ClaimJobs(ctx, "bench", 1)
		if err != nil || len(js) != 1 {
			b.Fatalf("claim %d: %v %v", i, js, err)
		}
	}
}

// BenchmarkSetJobProgress measures a runner's progress reports on one
// processing job, each one moving the frame count forward.
func BenchmarkSetJobProgress(b *testing.B) {
	ctx := context.Background()
	db := openTest(b)
	k, _ := newKey(b, db, 10)
	j := createJob(b, db, k.ID, 1, true)
	lease := claimOne(b, db, j.ID).Lease()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		st, err := db.SetJobProgress(ctx, lease, i*100/b.N, int64(i+1), int64(b.N))
		if err != nil || st != vidmatte.StatusProcessing {
			b.Fatalf("progress %d: %s %v", i, st, err)
		}
	}
}

// BenchmarkSetJobProgressUnchanged measures a report that moves nothing
// forward: it writes nothing and costs no fsync.
func BenchmarkSetJobProgressUnchanged(b *testing.B) {
	ctx := context.Background()
	db := openTest(b)
	k, _ := newKey(b, db, 10)
	j := createJob(b, db, k.ID, 1, true)
	claimOne(b, db, j.ID)
	if _, err := db.SetJobProgress(ctx, leaseOf(b, db, j.ID), 50, 100, 200); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := db.SetJobProgress(ctx, leaseOf(b, db, j.ID), 50, 100, 200); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCreateJob measures creating a queued job: the job, its credit
// reservation and ledger row, and its transition in one transaction.
func BenchmarkCreateJob(b *testing.B) {
	ctx := context.Background()
	db := openTest(b)
	k, _ := newKey(b, db, 1e9)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := db.CreateJob(ctx, newJobFor(k.ID, 1), true, "req"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFindJob measures reading one job through the read pool, from
// several goroutines at once.
func BenchmarkFindJob(b *testing.B) {
	ctx := context.Background()
	db := openTest(b)
	k, _ := newKey(b, db, 10)
	j := createJob(b, db, k.ID, 1, true)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := db.FindJob(ctx, k.ID, j.ID); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
