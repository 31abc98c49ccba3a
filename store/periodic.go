package store

import (
	"context"
	"time"

	"vidmatte"
)

// TakeTurn reports whether holder runs the periodic work of the name now:
// the first daemon (of all those sharing the store) to ask once its time
// has come takes the turn and moves the next one every later, on the
// database's clock; the others are told no until then.
func (db *DB) TakeTurn(ctx context.Context, name, holder string, every time.Duration) (bool, error) {
	if name == "" || every <= 0 {
		return false, vidmatte.Errorf(vidmatte.CodeInvalid, "store: a periodic turn needs a name and a period")
	}
	var taken bool
	err := db.write(ctx, "take a periodic turn", func(tx *txn) error {
		now, err := db.clock(ctx, tx)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, "INSERT INTO periodic (name, next_at) VALUES (?, 0) ON CONFLICT (name) DO NOTHING", name); err != nil {
			return dbError(err, "take a periodic turn")
		}
		res, err := tx.ExecContext(ctx, "UPDATE periodic SET next_at = ?, holder = ? WHERE name = ? AND next_at <= ?",
			now+int64(every), holder, name, now)
		if err != nil {
			return dbError(err, "take a periodic turn")
		}
		n, _ := res.RowsAffected()
		taken = n == 1
		return nil
	})
	return taken, err
}
