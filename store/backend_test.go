package store

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"testing"
	"vidmatte"

	"vidmatte/internal/testpg"
)

// The store's tests are its backends' conformance suite: the package's
// tests run on SQLite, and then the test binary runs them all again on a
// real PostgreSQL server (testpg), with the environment variable below.
// A test about SQLite's files themselves says so with sqliteOnly.
const backendEnv = "VIDMATTE_STORE_TEST_BACKEND"

var testBackend = os.Getenv(backendEnv) // "" (SQLite) or "postgres"

func TestMain(m *testing.M) {
	if testBackend == "postgres" {
		os.Exit(testpg.Run(m))
	}
	code := m.Run()
	if code == 0 && os.Getenv(envCrashDB) == "" {
		code = rerunOnPostgres()
	}
	os.Exit(code)
}

// rerunOnPostgres runs this test binary again, with the same arguments,
// on PostgreSQL.
func rerunOnPostgres() int {
	cmd := exec.Command(os.Args[0], os.Args[1:]...)
	cmd.Env = append(os.Environ(), backendEnv+"=postgres")
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	os.Stdout.WriteString("store: the same tests on PostgreSQL\n")
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		os.Stderr.WriteString("store: " + err.Error() + "\n")
		return 1
	}
	return 0
}

// sqliteOnly skips a test about SQLite's own files in the PostgreSQL run
// (it ran, and passed, in the SQLite run of the same binary).
func sqliteOnly(t testing.TB) {
	t.Helper()
	if testBackend == "postgres" {
		t.Skip("about SQLite's database file; it ran on SQLite")
	}
}

// testDSN names a new, empty database of the backend under test.
func testDSN(t testing.TB) string {
	t.Helper()
	if testBackend == "postgres" {
		return testpg.Database(t)
	}
	return filepath.Join(t.TempDir(), "state", "vidmatte.db")
}

// openAt opens the database dsn names on the backend under test; the
// caller closes it.
func openAt(t testing.TB, dsn string) *DB {
	t.Helper()
	db, err := openBackend(dsn)
	if err != nil {
		t.Fatalf("open %s: %v", dsn, err)
	}
	return db
}

// openBackend opens dsn on the backend under test.
func openBackend(dsn string) (*DB, error) {
	if testBackend == "postgres" {
		return OpenPostgres(context.Background(), dsn)
	}
	return Open(dsn)
}

// openTest opens a fresh database of the backend under test, closed when
// the test ends.
func openTest(t testing.TB) *DB {
	t.Helper()
	db := openAt(t, testDSN(t))
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return db
}

// Every schema version exists in both dialects.
func TestDialectsMigrateAlike(t *testing.T) {
	versions := func(d dialect) []int {
		ms, err := migrations(d)
		must(t, err)
		var vs []int
		for _, m := range ms {
			vs = append(vs, m.version)
		}
		return vs
	}
	if s, p := versions(sqliteDialect), versions(postgresDialect); !reflect.DeepEqual(s, p) {
		t.Fatalf("SQLite migrations %v, PostgreSQL migrations %v", s, p)
	}
}

func TestRebind(t *testing.T) {
	for in, want := range map[string]string{
		"SELECT a FROM t WHERE x = ? AND y = ?":                          "SELECT a FROM t WHERE x = $1 AND y = $2",
		"SELECT ?1 + ?1, ?2":                                             "SELECT $1 + $1, $2",
		"SELECT '?' , ? FROM t":                                          "SELECT '?' , $1 FROM t",
		"UPDATE t SET a = greatest(a, ?) WHERE id NOT IN json_values(?)": "UPDATE t SET a = greatest(a, $1) WHERE id NOT IN (SELECT json_array_elements_text(CAST($2 AS json)))",
		"SELECT 1 WHERE x NOT IN json_values(?3)":                        "SELECT 1 WHERE x NOT IN (SELECT json_array_elements_text(CAST($3 AS json)))",
	} {
		if got := postgresDialect.sql(in); got != want {
			t.Errorf("%q\n got %q\nwant %q", in, got, want)
		}
	}
	if got := sqliteDialect.sql("SELECT greatest(a, ?) FROM t WHERE id = ? FOR_UPDATE"); got != "SELECT max(a, ?) FROM t WHERE id = ?" {
		t.Errorf("sqlite: %q", got)
	}
}

// leaseOf is the current lease of a job, for tests that are not about
// fencing and act as the runner holding it.
func leaseOf(t testing.TB, db *DB, id string) vidmatte.Lease {
	t.Helper()
	j, err := db.FindJob(context.Background(), "", id)
	if err != nil {
		return vidmatte.Lease{JobID: id}
	}
	return j.Lease()
}
