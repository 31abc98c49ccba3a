package store

import (
	"context"
	"database/sql"
	"errors"
	"math"
	"strings"

	"vidmatte"
)

// maxCredits bounds every credit amount the store accepts, far below what
// int64 thousandths can hold, so sums never overflow.
const maxCredits = 1e12

// toMilli converts credits to the integer thousandths the store keeps,
// rounding to the nearest thousandth.
func toMilli(field string, credits float64) (int64, error) {
	if math.IsNaN(credits) || math.IsInf(credits, 0) || credits < 0 || credits > maxCredits {
		return 0, vidmatte.FieldErrorf(field, "must be a number between 0 and %g", float64(maxCredits))
	}
	return int64(math.Round(credits * 1000)), nil
}

// fromMilli converts stored thousandths to credits.
func fromMilli(m int64) float64 { return float64(m) / 1000 }

const keyColumns = "id, name, prefix, balance_milli, webhook_secret, created_at, revoked_at"

func scanKey(row interface{ Scan(...any) error }) (*vidmatte.Key, error) {
	var (
		k       vidmatte.Key
		balance int64
		created int64
		revoked sql.NullInt64
	)
	if err := row.Scan(&k.ID, &k.Name, &k.Prefix, &balance, &k.WebhookSecret, &created, &revoked); err != nil {
		return nil, err
	}
	k.Balance = fromMilli(balance)
	k.CreatedAt = fromNanos(created)
	k.RevokedAt = nullNanos(revoked)
	return &k, nil
}

// CreateKey makes a key with an initial grant of credits (a grant ledger
// row when credits > 0) and returns it with its secret. Only the secret's
// SHA-256 and its first 12 characters (Prefix) are stored.
func (db *DB) CreateKey(ctx context.Context, name string, credits float64) (*vidmatte.Key, string, error) {
	name = strings.TrimSpace(name)
	if name == "" || len(name) > 200 {
		return nil, "", vidmatte.FieldErrorf("name", "must be 1 to 200 characters")
	}
	milli, err := toMilli("credits", credits)
	if err != nil {
		return nil, "", err
	}
	secret := newSecret()
	now := db.now()
	k := &vidmatte.Key{
		ID:            newID(prefixKey),
		Name:          name,
		Prefix:        secret[:prefixLen],
		Balance:       fromMilli(milli),
		WebhookSecret: prefixWebhook + randomString(secretChars),
		CreatedAt:     now,
	}
	err = db.write(ctx, "create key", func(tx *txn) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO keys (id, name, prefix, secret_hash, balance_milli, webhook_secret, created_at)
VALUES (?, ?, ?, ?, ?, ?, ?)`, k.ID, k.Name, k.Prefix, hashSecret(secret), milli, k.WebhookSecret, nanos(now))
		if err != nil {
			return dbError(err, "create key")
		}
		if milli > 0 {
			return insertLedger(ctx, tx, k.ID, vidmatte.LedgerGrant, "", milli, 0, "", now)
		}
		return nil
	})
	if err != nil {
		return nil, "", err
	}
	return k, secret, nil
}

// errBadKey is the answer to any secret that does not open a live key; it
// does not say whether the key exists.
func errBadKey() error {
	return vidmatte.Errorf(vidmatte.CodeUnauthenticated, "invalid or revoked API key")
}

// AuthenticateKey returns the live key whose secret this is, or
// CodeUnauthenticated for an unknown, malformed or revoked secret.
func (db *DB) AuthenticateKey(ctx context.Context, secret string) (*vidmatte.Key, error) {
	if len(secret) != len(prefixSecret)+secretChars || !strings.HasPrefix(secret, prefixSecret) {
		return nil, errBadKey()
	}
	k, err := scanKey(db.r.QueryRowContext(ctx, "SELECT "+keyColumns+" FROM keys WHERE secret_hash = ?", hashSecret(secret)))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errBadKey()
	}
	if err != nil {
		return nil, dbError(err, "authenticate key")
	}
	if k.RevokedAt != nil {
		return nil, errBadKey()
	}
	return k, nil
}

// FindKey finds a key, revoked or not, by its ID ("key_…"), by its whole
// secret, or by a prefix of its secret of at most 12 characters that only
// one key has (several is CodeConflict).
func (db *DB) FindKey(ctx context.Context, idOrPrefix string) (*vidmatte.Key, error) {
	s := strings.TrimSpace(idOrPrefix)
	notFound := vidmatte.Errorf(vidmatte.CodeNotFound, "no key %q", s)
	var (
		k   *vidmatte.Key
		err error
	)
	switch {
	case strings.HasPrefix(s, prefixKey):
		k, err = scanKey(db.r.QueryRowContext(ctx, "SELECT "+keyColumns+" FROM keys WHERE id = ?", s))
	case len(s) == len(prefixSecret)+secretChars:
		k, err = scanKey(db.r.QueryRowContext(ctx, "SELECT "+keyColumns+" FROM keys WHERE secret_hash = ?", hashSecret(s)))
	case len(s) > 0 && len(s) <= prefixLen:
		rows, qerr := db.r.QueryContext(ctx, "SELECT "+keyColumns+" FROM keys WHERE substr(prefix, 1, ?) = ? ORDER BY created_at LIMIT 2", len(s), s)
		if qerr != nil {
			return nil, dbError(qerr, "find key")
		}
		var ks []*vidmatte.Key
		for rows.Next() {
			k, err := scanKey(rows)
			if err != nil {
				rows.Close()
				return nil, dbError(err, "find key")
			}
			ks = append(ks, k)
		}
		if err := rows.Err(); err != nil {
			return nil, dbError(err, "find key")
		}
		rows.Close()
		switch len(ks) {
		case 0:
			return nil, notFound
		case 1:
			return ks[0], nil
		}
		return nil, vidmatte.Errorf(vidmatte.CodeConflict, "prefix %q matches more than one key", s)
	default:
		return nil, notFound
	}
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound
	}
	if err != nil {
		return nil, dbError(err, "find key")
	}
	return k, nil
}

// ListKeys lists every key, revoked ones included, oldest first.
func (db *DB) ListKeys(ctx context.Context) ([]*vidmatte.Key, error) {
	rows, err := db.r.QueryContext(ctx, "SELECT "+keyColumns+" FROM keys ORDER BY created_at, id")
	if err != nil {
		return nil, dbError(err, "list keys")
	}
	defer rows.Close()
	ks := []*vidmatte.Key{}
	for rows.Next() {
		k, err := scanKey(rows)
		if err != nil {
			return nil, dbError(err, "list keys")
		}
		ks = append(ks, k)
	}
	return ks, dbError(rows.Err(), "list keys")
}

// RevokeKey revokes a key: its secret no longer authenticates. Revoking a
// revoked key changes nothing (it keeps its first revocation time).
func (db *DB) RevokeKey(ctx context.Context, id string) error {
	return db.write(ctx, "revoke key", func(tx *txn) error {
		res, err := tx.ExecContext(ctx, "UPDATE keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", nanos(db.now()), id)
		if err != nil {
			return dbError(err, "revoke key")
		}
		if n, _ := res.RowsAffected(); n == 1 {
			return nil
		}
		_, err = lockKey(ctx, tx, id)
		return err
	})
}

// GrantCredits adds credits (more than zero) to a key's balance with a
// grant ledger row, and returns the key with its new balance.
func (db *DB) GrantCredits(ctx context.Context, id string, credits float64) (*vidmatte.Key, error) {
	milli, err := toMilli("credits", credits)
	if err != nil {
		return nil, err
	}
	if milli == 0 {
		return nil, vidmatte.FieldErrorf("credits", "must be at least 0.001")
	}
	var k *vidmatte.Key
	err = db.write(ctx, "grant credits", func(tx *txn) error {
		if _, err := lockKey(ctx, tx, id); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, "UPDATE keys SET balance_milli = balance_milli + ? WHERE id = ?", milli, id); err != nil {
			return dbError(err, "grant credits")
		}
		if err := insertLedger(ctx, tx, id, vidmatte.LedgerGrant, "", milli, 0, "", db.now()); err != nil {
			return err
		}
		k, err = lockKey(ctx, tx, id)
		return err
	})
	if err != nil {
		return nil, err
	}
	return k, nil
}

// lockKey reads a key inside a write transaction (which already holds the
// database's write lock; PostgreSQL would say FOR UPDATE). A missing key is
// CodeNotFound.
func lockKey(ctx context.Context, tx *txn, id string) (*vidmatte.Key, error) {
	k, err := scanKey(tx.QueryRowContext(ctx, "SELECT "+keyColumns+" FROM keys WHERE id = ? FOR_UPDATE", id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, vidmatte.Errorf(vidmatte.CodeNotFound, "no key %q", id)
	}
	if err != nil {
		return nil, dbError(err, "read key")
	}
	return k, nil
}
