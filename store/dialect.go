package store

import (
	"context"
	"database/sql"
	"regexp"
	"strconv"
	"strings"
)

// dialect is the SQL a backend speaks. The store's queries are written
// once, in the common part of SQLite's and PostgreSQL's SQL, with "?"
// placeholders ("?N" for a numbered one) and three tokens that the dialect
// turns into its own words:
//
//	greatest(a, b)      the larger of two values (SQLite: max(a, b))
//	json_values(?)      the strings of a JSON array parameter (or ?N), as a subquery
//	FOR_UPDATE          a row lock on what a SELECT reads (SQLite: nothing;
//	                    its write transactions hold the database's lock)
//	SKIP_LOCKED         skip rows another transaction has locked (SQLite:
//	                    nothing); written after FOR_UPDATE
type dialect int

const (
	sqliteDialect dialect = iota
	postgresDialect
)

func (d dialect) String() string {
	if d == postgresDialect {
		return "postgres"
	}
	return "sqlite"
}

// jsonValues matches the json_values token with its placeholder ("?" or
// "?N").
var jsonValues = regexp.MustCompile(`json_values\((\?[0-9]*)\)`)

// sql rewrites a query of the store into the dialect.
func (d dialect) sql(q string) string {
	if d == sqliteDialect {
		q = strings.ReplaceAll(q, "greatest(", "max(")
		q = jsonValues.ReplaceAllString(q, "(SELECT value FROM json_each($1))")
		q = strings.ReplaceAll(q, " SKIP_LOCKED", "")
		return strings.ReplaceAll(q, " FOR_UPDATE", "")
	}
	q = jsonValues.ReplaceAllString(q, "(SELECT json_array_elements_text(CAST($1 AS json)))")
	q = strings.ReplaceAll(q, " FOR_UPDATE", " FOR UPDATE")
	q = strings.ReplaceAll(q, " SKIP_LOCKED", " SKIP LOCKED")
	return rebind(q)
}

// rebind turns "?" placeholders into PostgreSQL's "$1", "$2", … in order,
// and "?N" into "$N". Quoted text is left alone.
func rebind(q string) string {
	var b strings.Builder
	b.Grow(len(q) + 16)
	n := 0
	inQuote := false
	for i := 0; i < len(q); i++ {
		c := q[i]
		switch {
		case c == '\'':
			inQuote = !inQuote
			b.WriteByte(c)
		case c == '?' && !inQuote:
			j := i + 1
			for j < len(q) && q[j] >= '0' && q[j] <= '9' {
				j++
			}
			if j > i+1 {
				b.WriteString("$" + q[i+1:j])
				i = j - 1
				continue
			}
			n++
			b.WriteString("$" + strconv.Itoa(n))
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// conn is a pool of the database that speaks the store's SQL.
type conn struct {
	*sql.DB
	d dialect
}

func (c *conn) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	return c.DB.ExecContext(ctx, c.d.sql(q), args...)
}

func (c *conn) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	return c.DB.QueryContext(ctx, c.d.sql(q), args...)
}

func (c *conn) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	return c.DB.QueryRowContext(ctx, c.d.sql(q), args...)
}

// QueryRow is QueryRowContext without a context (tests).
func (c *conn) QueryRow(q string, args ...any) *sql.Row {
	return c.QueryRowContext(context.Background(), q, args...)
}

// Query is QueryContext without a context (tests).
func (c *conn) Query(q string, args ...any) (*sql.Rows, error) {
	return c.QueryContext(context.Background(), q, args...)
}

// Exec is ExecContext without a context (tests).
func (c *conn) Exec(q string, args ...any) (sql.Result, error) {
	return c.ExecContext(context.Background(), q, args...)
}

func (c *conn) BeginTx(ctx context.Context, opts *sql.TxOptions) (*txn, error) {
	tx, err := c.DB.BeginTx(ctx, opts)
	if err != nil {
		return nil, err
	}
	return &txn{Tx: tx, d: c.d}, nil
}

// txn is a transaction that speaks the store's SQL.
type txn struct {
	*sql.Tx
	d dialect
}

func (t *txn) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	return t.Tx.ExecContext(ctx, t.d.sql(q), args...)
}

func (t *txn) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	return t.Tx.QueryContext(ctx, t.d.sql(q), args...)
}

func (t *txn) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	return t.Tx.QueryRowContext(ctx, t.d.sql(q), args...)
}
