package store

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"vidmatte"

	"go.uber.org/goleak"
)

// testClock is a settable clock that moves forward a microsecond at every
// reading, so rows written one after the other have distinct times.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Microsecond)
	return c.t
}

func (c *testClock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t.UTC()
}

// withClock gives db a test clock starting at start.
func withClock(db *DB, start time.Time) *testClock {
	c := &testClock{t: start.UTC()}
	db.now = c.now
	return c
}

// wantCode fails the test unless err carries the code.
func wantCode(t testing.TB, err error, code vidmatte.Code) {
	t.Helper()
	if got := vidmatte.ErrorCode(err); got != code {
		t.Fatalf("error %v: code %q, want %q", err, got, code)
	}
}

// must fails the test on an error.
func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// newKey creates a key with credits.
func newKey(t testing.TB, db *DB, credits float64) (*vidmatte.Key, string) {
	t.Helper()
	k, secret, err := db.CreateKey(context.Background(), "test key", credits)
	if err != nil {
		t.Fatalf("CreateKey: %v", err)
	}
	return k, secret
}

// count runs a count query.
func count(t testing.TB, db *DB, query string, args ...any) int {
	t.Helper()
	var n int
	if err := db.r.QueryRow(query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// checkLedger verifies the ledger's invariants for every key and job: the
// balance is grants − reserves + refunds; a job has at most one reserve and
// at most one of charge or refund, none before a reserve, and its billing
// status says what the ledger holds.
func checkLedger(t testing.TB, db *DB) {
	t.Helper()
	rows, err := db.r.Query(`SELECT k.id, k.balance_milli,
	coalesce((SELECT sum(CASE type WHEN 'grant' THEN credits_milli WHEN 'refund' THEN credits_milli WHEN 'reserve' THEN -credits_milli ELSE 0 END)
		FROM ledger l WHERE l.key_id = k.id), 0)
FROM keys k`)
	must(t, err)
	for rows.Next() {
		var id string
		var balance, sum int64
		must(t, rows.Scan(&id, &balance, &sum))
		if balance != sum {
			t.Errorf("key %s: balance %d thousandths, ledger says %d", id, balance, sum)
		}
	}
	must(t, rows.Err())
	rows.Close()

	rows, err = db.r.Query(`SELECT j.id, j.status, j.billing_status, j.credits_milli,
	(SELECT count(*) FROM ledger WHERE job_id = j.id AND type = 'reserve'),
	(SELECT count(*) FROM ledger WHERE job_id = j.id AND type = 'charge'),
	(SELECT count(*) FROM ledger WHERE job_id = j.id AND type = 'refund'),
	coalesce((SELECT sum(credits_milli) FROM ledger WHERE job_id = j.id AND type = 'reserve'), 0)
FROM jobs j`)
	must(t, err)
	defer rows.Close()
	for rows.Next() {
		var id, status, billing string
		var milli, reserved int64
		var res, chg, ref int
		must(t, rows.Scan(&id, &status, &billing, &milli, &res, &chg, &ref, &reserved))
		want := map[string][3]int{"none": {0, 0, 0}, "reserved": {1, 0, 0}, "charged": {1, 1, 0}, "refunded": {1, 0, 1}}[billing]
		if [3]int{res, chg, ref} != want {
			t.Errorf("job %s (%s, billing %s): reserve/charge/refund rows %d/%d/%d", id, status, billing, res, chg, ref)
		}
		if res == 1 && reserved != milli {
			t.Errorf("job %s: reserved %d thousandths, job holds %d", id, reserved, milli)
		}
		switch vidmatte.Status(status) {
		case vidmatte.StatusQueued, vidmatte.StatusProcessing:
			if billing != "reserved" {
				t.Errorf("job %s is %s with billing %s", id, status, billing)
			}
		case vidmatte.StatusCompleted:
			if billing != "charged" {
				t.Errorf("job %s is completed with billing %s", id, billing)
			}
		case vidmatte.StatusFailed:
			if billing != "refunded" {
				t.Errorf("job %s is failed with billing %s", id, billing)
			}
		case vidmatte.StatusPending:
			if billing != "none" {
				t.Errorf("job %s is pending with billing %s", id, billing)
			}
		}
	}
	must(t, rows.Err())
}

func TestOpenMigratesOnceAndRecords(t *testing.T) {
	sqliteOnly(t)
	dir := filepath.Join(t.TempDir(), "a", "b")
	path := filepath.Join(dir, "vidmatte.db")
	db, err := Open(path)
	must(t, err)
	if db.Path() != path || !filepath.IsAbs(db.Path()) {
		t.Errorf("Path() = %q, want %q", db.Path(), path)
	}
	must(t, db.Ping(context.Background()))
	var applied int64
	must(t, db.r.QueryRow("SELECT applied_at FROM schema_migrations WHERE version = 1 AND name = 'init'").Scan(&applied))
	all, err := migrations(sqliteDialect)
	must(t, err)
	if n := count(t, db, "SELECT count(*) FROM schema_migrations"); n != len(all) {
		t.Fatalf("%d migrations recorded, want %d", n, len(all))
	}
	var mode string
	must(t, db.r.QueryRow("PRAGMA journal_mode").Scan(&mode))
	if mode != "wal" {
		t.Errorf("journal_mode %q", mode)
	}
	k, _ := newKey(t, db, 5)
	must(t, db.Close())

	fi, err := os.Stat(path)
	must(t, err)
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("database file mode %v, want 0600", fi.Mode().Perm())
	}

	db, err = Open(path)
	must(t, err)
	defer db.Close()
	var again int64
	must(t, db.r.QueryRow("SELECT applied_at FROM schema_migrations WHERE version = 1").Scan(&again))
	if again != applied || count(t, db, "SELECT count(*) FROM schema_migrations") != len(all) {
		t.Fatalf("migration applied again: applied_at %d then %d", applied, again)
	}
	if _, err := db.FindKey(context.Background(), k.ID); err != nil {
		t.Fatalf("key lost across reopen: %v", err)
	}
	// Every embedded migration is recorded.
	ms, err := migrations(sqliteDialect)
	must(t, err)
	if len(ms) == 0 || count(t, db, "SELECT count(*) FROM schema_migrations") != len(ms) {
		t.Fatalf("%d migrations embedded, recorded differently", len(ms))
	}
}

func TestOpenTwiceConcurrently(t *testing.T) {
	path := testDSN(t)
	var wg sync.WaitGroup
	errs := make([]error, 4)
	dbs := make([]*DB, 4)
	for i := range dbs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dbs[i], errs[i] = openBackend(path)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Open %d: %v", i, err)
		}
		defer dbs[i].Close()
	}
	all, err := migrations(dbs[0].d)
	must(t, err)
	if n := count(t, dbs[0], "SELECT count(*) FROM schema_migrations"); n != len(all) {
		t.Fatalf("%d migration rows after concurrent opens", n)
	}
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	path := testDSN(t)
	db := openAt(t, path)
	_, err := db.w.Exec("INSERT INTO schema_migrations (version, name, applied_at) VALUES (9999, 'future', 0)")
	must(t, err)
	must(t, db.Close())
	if db, err := openBackend(path); err == nil {
		db.Close()
		t.Fatal("Open accepted a database from a newer program")
	} else if !strings.Contains(err.Error(), "9999") {
		t.Fatalf("error does not name the version: %v", err)
	}
}

func TestOpenPathWithURICharacters(t *testing.T) {
	sqliteOnly(t)
	path := filepath.Join(t.TempDir(), "odd?dir#x%20", "v.db")
	db, err := Open(path)
	must(t, err)
	defer db.Close()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("database not at %s: %v", path, err)
	}
}

var secretPattern = regexp.MustCompile(`^vmk_[0-9A-Za-z]{40}$`)

func TestKeys(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	k, secret, err := db.CreateKey(ctx, "  acme  ", 12.3456)
	must(t, err)
	if !secretPattern.MatchString(secret) {
		t.Fatalf("secret %q is not vmk_ and 40 base62 characters", secret)
	}
	if k.Prefix != secret[:12] || k.Name != "acme" || k.Balance != 12.346 || !strings.HasPrefix(k.ID, "key_") {
		t.Fatalf("key %+v", k)
	}
	if !strings.HasPrefix(k.WebhookSecret, "whsec_") || len(k.WebhookSecret) < 30 {
		t.Fatalf("webhook secret %q", k.WebhookSecret)
	}

	got, err := db.AuthenticateKey(ctx, secret)
	must(t, err)
	if *got != *k {
		t.Fatalf("authenticated %+v, created %+v", got, k)
	}
	for _, bad := range []string{"", "vmk_", secret[:len(secret)-1], secret + "x", "vmk_" + strings.Repeat("A", 40), strings.Replace(secret, "vmk_", "xmk_", 1)} {
		_, err := db.AuthenticateKey(ctx, bad)
		wantCode(t, err, vidmatte.CodeUnauthenticated)
	}

	k2, secret2, err := db.CreateKey(ctx, "other", 0)
	must(t, err)
	if secret2 == secret || k2.ID == k.ID {
		t.Fatal("two keys share a secret or an id")
	}
	if n := count(t, db, "SELECT count(*) FROM ledger WHERE key_id = ?", k2.ID); n != 0 {
		t.Errorf("a zero grant wrote %d ledger rows", n)
	}
	for _, q := range []string{k.ID, k.Prefix, secret[:8], secret} {
		f, err := db.FindKey(ctx, q)
		if err != nil {
			t.Fatalf("FindKey(%q): %v", q, err)
		}
		if f.ID != k.ID {
			t.Fatalf("FindKey(%q) found %s", q, f.ID)
		}
	}
	_, err = db.FindKey(ctx, "vmk_")
	wantCode(t, err, vidmatte.CodeConflict)
	_, err = db.FindKey(ctx, "key_nope")
	wantCode(t, err, vidmatte.CodeNotFound)
	_, err = db.FindKey(ctx, "")
	wantCode(t, err, vidmatte.CodeNotFound)
	_, err = db.FindKey(ctx, secret[:20]) // longer than the stored prefix, not a secret
	wantCode(t, err, vidmatte.CodeNotFound)

	ks, err := db.ListKeys(ctx)
	must(t, err)
	if len(ks) != 2 || ks[0].ID != k.ID || ks[1].ID != k2.ID {
		t.Fatalf("ListKeys: %+v", ks)
	}

	g, err := db.GrantCredits(ctx, k.ID, 0.654)
	must(t, err)
	if g.Balance != 13 {
		t.Fatalf("balance after grant %v, want 13", g.Balance)
	}
	for _, bad := range []float64{0, -1, 0.0001} {
		_, err := db.GrantCredits(ctx, k.ID, bad)
		wantCode(t, err, vidmatte.CodeInvalid)
	}
	_, err = db.GrantCredits(ctx, "key_nope", 1)
	wantCode(t, err, vidmatte.CodeNotFound)
	evs, err := db.UsageEvents(ctx, k.ID, 10)
	must(t, err)
	if len(evs) != 2 || evs[0].Type != vidmatte.LedgerGrant || evs[0].Credits != 0.654 || evs[1].Credits != 12.346 {
		t.Fatalf("grant events %+v", evs)
	}

	must(t, db.RevokeKey(ctx, k.ID))
	_, err = db.AuthenticateKey(ctx, secret)
	wantCode(t, err, vidmatte.CodeUnauthenticated)
	f, err := db.FindKey(ctx, k.ID)
	must(t, err)
	if f.RevokedAt == nil {
		t.Fatal("revoked key has no RevokedAt")
	}
	must(t, db.RevokeKey(ctx, k.ID))
	f2, _ := db.FindKey(ctx, k.ID)
	if !f2.RevokedAt.Equal(*f.RevokedAt) {
		t.Fatal("revoking twice moved the revocation time")
	}
	wantCode(t, db.RevokeKey(ctx, "key_nope"), vidmatte.CodeNotFound)
	if _, err := db.AuthenticateKey(ctx, secret2); err != nil {
		t.Fatalf("the other key stopped working: %v", err)
	}
	_, _, err = db.CreateKey(ctx, " ", 1)
	wantCode(t, err, vidmatte.CodeInvalid)
	_, _, err = db.CreateKey(ctx, "x", -1)
	wantCode(t, err, vidmatte.CodeInvalid)
	checkLedger(t, db)
}

func TestSecretsAreNotInTheDatabaseFile(t *testing.T) {
	sqliteOnly(t)
	ctx := context.Background()
	dir := t.TempDir()
	db, err := Open(filepath.Join(dir, "vidmatte.db"))
	must(t, err)
	var secrets []string
	for i := 0; i < 5; i++ {
		_, s, err := db.CreateKey(ctx, "k", 1)
		must(t, err)
		secrets = append(secrets, s)
	}
	// Read the files both while open (the rows may sit in the WAL) and
	// after closing (checkpointed into the main file).
	scan := func(when string) {
		entries, err := os.ReadDir(dir)
		must(t, err)
		var all []byte
		for _, e := range entries {
			b, err := os.ReadFile(filepath.Join(dir, e.Name()))
			must(t, err)
			all = append(all, b...)
		}
		for _, s := range secrets {
			if bytes.Contains(all, []byte(s)) || bytes.Contains(all, []byte(s[12:])) {
				t.Fatalf("%s: a secret is in the database files", when)
			}
			if !bytes.Contains(all, hashSecret(s)) {
				t.Fatalf("%s: the secret's hash %s is not in the database files", when, hex.EncodeToString(hashSecret(s)))
			}
		}
	}
	scan("open")
	must(t, db.Close())
	scan("closed")
}

func TestContextCanceled(t *testing.T) {
	db := openTest(t)
	k, _ := newKey(t, db, 1)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := db.GrantCredits(ctx, k.ID, 1)
	if err == nil || !errors.Is(err, context.Canceled) {
		t.Fatalf("GrantCredits on a canceled context: %v", err)
	}
	wantCode(t, err, vidmatte.CodeCanceled)
	_, err = db.FindKey(ctx, k.ID)
	wantCode(t, err, vidmatte.CodeCanceled)
	got, err := db.FindKey(context.Background(), k.ID)
	must(t, err)
	if got.Balance != 1 {
		t.Fatalf("balance %v after a canceled grant", got.Balance)
	}
}

func TestIDs(t *testing.T) {
	seen := map[string]bool{}
	pattern := regexp.MustCompile(`^job_[0-9A-Za-z]{24}$`)
	for i := 0; i < 10000; i++ {
		id := newID(prefixJob)
		if !pattern.MatchString(id) || seen[id] {
			t.Fatalf("id %q malformed or repeated", id)
		}
		seen[id] = true
	}
	// Every character of the alphabet turns up, roughly evenly.
	counts := map[rune]int{}
	for _, r := range randomString(62 * 2000) {
		counts[r]++
	}
	for _, c := range base62 {
		if n := counts[c]; n < 1500 || n > 2500 {
			t.Fatalf("character %q drawn %d times of an expected 2000", c, n)
		}
	}
}

func TestTimesRoundTrip(t *testing.T) {
	for _, tm := range []time.Time{
		time.Date(2025, 3, 4, 5, 6, 7, 123456789, time.UTC),
		time.Date(2025, 3, 4, 5, 6, 7, 1, time.FixedZone("x", 3600)),
		time.Unix(0, 0),
	} {
		if got := fromNanos(nanos(tm)); !got.Equal(tm) || got.Location() != time.UTC {
			t.Errorf("%v came back as %v", tm, got)
		}
	}
	if nanos(time.Time{}) >= nanos(time.Unix(0, 0)) {
		t.Error("the zero time is not before 1970")
	}
}

func TestCloseLeavesNoGoroutines(t *testing.T) {
	sqliteOnly(t)
	ctx := context.Background()
	before := goleak.IgnoreCurrent()
	db, err := Open(filepath.Join(t.TempDir(), "v.db"))
	must(t, err)
	k, _ := newKey(t, db, 10)
	j := createJob(t, db, k.ID, 1, true)
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			db.FindJob(ctx, k.ID, j.ID)
			db.ClaimJobs(ctx, "w", 1)
		}()
	}
	wg.Wait()
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	db.ListJobs(cctx, k.ID, vidmatte.JobFilter{})
	must(t, db.Close())
	goleak.VerifyNone(t, before)
}
