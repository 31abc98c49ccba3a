package vidmatte

import (
	"context"
	"time"
)

// The services below are what the daemon needs from its store. The store
// package implements them over SQLite; the api package and the job runner
// consume them. Every method returns errors of the vocabulary: a missing row
// is CodeNotFound, a transition that is not allowed is CodeConflict, a short
// balance is CodeInsufficientCredits.
//
// Credits are numbers with at most three decimals (the store keeps integer
// thousandths, so sums never drift).

// Key is an API key's account. The secret itself is never stored: only its
// hash, and Prefix (the first characters) to recognise it in listings.
type Key struct {
	ID            string
	Name          string
	Prefix        string
	Balance       float64 // credits available (reservations already taken off)
	WebhookSecret string  // signs this key's webhook deliveries
	CreatedAt     time.Time
	RevokedAt     *time.Time
}

// KeyService manages API keys and their credit balances.
type KeyService interface {
	// CreateKey makes a key with an initial grant of credits and returns it
	// with its secret, which exists nowhere else afterwards.
	CreateKey(ctx context.Context, name string, credits float64) (*Key, string, error)
	// AuthenticateKey returns the live key whose secret this is, or
	// CodeUnauthenticated (unknown or revoked).
	AuthenticateKey(ctx context.Context, secret string) (*Key, error)
	// FindKey finds a key by its ID or by a unique prefix of its secret.
	FindKey(ctx context.Context, idOrPrefix string) (*Key, error)
	ListKeys(ctx context.Context) ([]*Key, error)
	RevokeKey(ctx context.Context, id string) error
	// GrantCredits adds credits (a ledger row of type grant) and returns the
	// key with its new balance.
	GrantCredits(ctx context.Context, id string, credits float64) (*Key, error)
}

// UploadService records uploaded videos.
type UploadService interface {
	CreateUpload(ctx context.Context, u *Upload) error // fills ID and CreatedAt
	// FindUpload returns an upload of the key; another key's upload is
	// CodeNotFound.
	FindUpload(ctx context.Context, keyID, id string) (*Upload, error)
}

// JobFilter narrows a job listing. Newest first.
type JobFilter struct {
	Status Status // "" = any
	Limit  int    // 1..100
	Offset int
}

// JobPatch overrides fields of a draft when it is started. Nil fields are
// left as they are.
type JobPatch struct {
	Model        *string
	OutputFormat *OutputFormat
	Background   *Background
	Composition  *Composition
	Credits      *float64 // the reservation, recomputed when the model changes
}

// Transition is one persisted change of a job's status.
type Transition struct {
	From      Status // "" for the creation
	To        Status
	Cause     string
	RequestID string
	At        time.Time
}

// JobService is the life of jobs: the client side (create, start, cancel,
// read) and the runner side (claim, progress, outcome, recovery). Every
// status change is a Transition row written in the same transaction, and
// every credit movement a ledger row that is applied exactly once.
type JobService interface {
	// CreateJob stores a new job for j.KeyID and fills its ID, status and
	// times. With autoStart it is queued at once and j.Credits are reserved
	// (CodeInsufficientCredits and nothing written when the balance is
	// short); without, it is a pending draft with nothing reserved.
	CreateJob(ctx context.Context, j *Job, autoStart bool, requestID string) error
	// StartJob queues a pending draft, applying the patch and reserving its
	// credits. Any other status is CodeConflict.
	StartJob(ctx context.Context, keyID, id string, patch JobPatch, requestID string) (*Job, error)
	// FindJob returns a job of the key (keyID "" = any key: the runner).
	// Another key's job is CodeNotFound.
	FindJob(ctx context.Context, keyID, id string) (*Job, error)
	ListJobs(ctx context.Context, keyID string, f JobFilter) ([]*Job, error)
	// CancelJob cancels a pending, queued or processing job and refunds its
	// reservation; a job already terminal is CodeConflict.
	CancelJob(ctx context.Context, keyID, id, cause, requestID string) (*Job, error)

	// ClaimJobs moves up to max queued jobs, fairly across keys, to
	// processing for this worker and returns them, each with a lease (a
	// new fencing token and an expiry on the database's clock). Two
	// workers never claim the same job.
	ClaimJobs(ctx context.Context, worker string, max int) ([]*Job, error)
	// Heartbeat extends the leases the worker holds and returns those it
	// no longer holds, with their job's status: a job canceled by a client
	// (through any daemon), or rescued after the lease ran out and perhaps
	// claimed again. A runner stops a job whose lease it lost.
	Heartbeat(ctx context.Context, worker string, leases []Lease) (map[string]Status, error)
	// The runner's writes carry the job's lease: a write with a lease
	// that is not the job's current one is CodeConflict and changes
	// nothing, so a stale runner (killed, frozen, cut off) can never
	// overwrite, complete or charge a job another runner holds.
	//
	// SetJobProgress records progress of a processing job; progress and
	// frames never go backwards (a lower value is ignored). It returns the
	// job's current status so a runner learns of a cancel.
	SetJobProgress(ctx context.Context, l Lease, progress int, framesDone, framesTotal int64) (Status, error)
	// CompleteJob marks a processing job completed with its output and
	// charges what was processed (out.Frames of the job's frames; all of
	// the reservation when unknown), returning the rest of the reservation
	// to the balance.
	CompleteJob(ctx context.Context, l Lease, out JobOutput) (*Job, error)
	// FailJob marks a processing job failed and refunds the reservation.
	FailJob(ctx context.Context, l Lease, e JobError) (*Job, error)
	// RequeueJob puts a processing job back in the queue (a draining
	// daemon), keeping its reservation.
	RequeueJob(ctx context.Context, l Lease, cause string) (*Job, error)
	// RescueJobs takes back the processing jobs whose lease has run out
	// (their runner died or stopped answering): each goes back to the
	// queue, the attempt counted, or past maxAttempts fails and is
	// refunded. Any daemon may call it; it returns the jobs it touched.
	RescueJobs(ctx context.Context, maxAttempts int) ([]*Job, error)
	// RecoverJobs requeues every job left processing, as a daemon that is
	// the only one on its database does at start (SQLite, under the data
	// folder's lock), counting the attempt; a job past maxAttempts fails
	// (and is refunded). It returns the jobs it touched.
	RecoverJobs(ctx context.Context, maxAttempts int) ([]*Job, error)
	Transitions(ctx context.Context, id string) ([]Transition, error)
	// CountJobs counts jobs by status (for metrics and health).
	CountJobs(ctx context.Context) (map[Status]int, error)
}

// Ledger event types.
const (
	LedgerGrant   = "grant"
	LedgerReserve = "reserve"
	LedgerCharge  = "charge"
	LedgerRefund  = "refund"
)

// LedgerEvent is one credit movement of a key.
type LedgerEvent struct {
	ID        string
	KeyID     string
	Type      string
	JobID     string
	Credits   float64
	Seconds   float64
	Model     string
	CreatedAt time.Time
}

// UsageDay is one day (UTC) of a key's usage.
type UsageDay struct {
	Date     string // YYYY-MM-DD
	Jobs     int    // jobs charged that day
	Seconds  float64
	Credits  float64 // charged
	Refunded float64
}

// UsageSummary is a key's usage over its last days, with its balance.
type UsageSummary struct {
	Days          []UsageDay // every day of the window, oldest first, zeros included
	TotalJobs     int
	TotalSeconds  float64
	TotalCredits  float64
	TotalRefunded float64
	Balance       float64
	Reserved      float64 // held by queued and processing jobs
}

// UsageService reads the ledger.
type UsageService interface {
	UsageEvents(ctx context.Context, keyID string, limit int) ([]LedgerEvent, error)
	UsageSummary(ctx context.Context, keyID string, days int, now time.Time) (*UsageSummary, error)
}

// IdempotencyRecord is the first response to a POST made with an
// Idempotency-Key, kept to be replayed.
type IdempotencyRecord struct {
	KeyID       string
	Key         string
	Method      string
	Path        string
	BodyHash    string
	Done        bool // false while the first request is still being handled
	Status      int
	ContentType string
	Body        []byte
	CreatedAt   time.Time
	// LeaseUntil is when a claim that is not done may be taken over by a
	// retry of the same request: its first request died without an answer.
	// Zero is a claim that never expires before it is purged.
	LeaseUntil time.Time
	// Resource is the id of what the claimed request created or changed (a
	// job, an upload), written by the store in the same transaction as the
	// change when the change's context carries the claim
	// (WithIdempotencyClaim). A retry that takes over a claim with a
	// Resource answers with it: the change is never made twice.
	Resource string
}

type idemClaimKey struct{}

type idemClaim struct{ keyID, key string }

// WithIdempotencyClaim returns a context under which the store records the
// id of the job or upload a change makes in the claim (keyID, key), in the
// change's own transaction.
func WithIdempotencyClaim(ctx context.Context, keyID, key string) context.Context {
	return context.WithValue(ctx, idemClaimKey{}, idemClaim{keyID, key})
}

// IdempotencyClaimFrom returns the claim a context carries.
func IdempotencyClaimFrom(ctx context.Context) (keyID, key string, ok bool) {
	c, ok := ctx.Value(idemClaimKey{}).(idemClaim)
	return c.keyID, c.key, ok
}

// IdempotencyService keeps idempotency records for at least their TTL.
type IdempotencyService interface {
	// BeginIdempotent claims (keyID, key) for a request. When a record
	// exists already it is returned with claimed false, and nothing changes.
	BeginIdempotent(ctx context.Context, rec *IdempotencyRecord) (existing *IdempotencyRecord, claimed bool, err error)
	// FinishIdempotent stores the response of a claimed record.
	FinishIdempotent(ctx context.Context, rec *IdempotencyRecord) error
	// AbandonIdempotent drops a claim whose request failed before it had a
	// response to keep, so a retry may run.
	AbandonIdempotent(ctx context.Context, keyID, key string) error
	// PurgeIdempotent removes records created before the time.
	PurgeIdempotent(ctx context.Context, before time.Time) (int, error)
}

// Webhook events.
const (
	EventJobStarted   = "job.started"
	EventJobCompleted = "job.completed"
	EventJobFailed    = "job.failed"
)

// WebhookDelivery is one event to deliver to a job's webhook URL, with the
// state of its attempts. Payload is the body as first rendered, so retries
// send the same bytes.
type WebhookDelivery struct {
	ID            string
	JobID         string
	KeyID         string
	Event         string
	URL           string
	Payload       []byte
	Attempts      int
	Delivered     bool
	Failed        bool // gave up
	NextAttemptAt time.Time
	LastStatus    int
	LastError     string
	CreatedAt     time.Time
}

// WebhookService persists deliveries and their attempts, so they survive
// restarts.
type WebhookService interface {
	EnqueueWebhook(ctx context.Context, d *WebhookDelivery) error
	// ClaimWebhooks claims, for one attempt each, undelivered deliveries
	// due at now that no other sender holds, oldest first, but for those
	// to the hosts in except; a claim holds a delivery for hold.
	ClaimWebhooks(ctx context.Context, now time.Time, limit int, except []string, hold time.Duration) ([]*WebhookDelivery, error)
	// ReleaseWebhooks ends claims that will not be attempted now.
	ReleaseWebhooks(ctx context.Context, ids []string) error
	// RecordWebhookAttempt stores the outcome of an attempt: delivered, or
	// the next time to try, or failed for good.
	RecordWebhookAttempt(ctx context.Context, id string, delivered, failed bool, status int, errMsg string, next time.Time) error
}
