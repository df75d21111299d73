// Package store defines Ony's system of record: the records it keeps and the organization-scoped
// transactions through which every read and write goes. Drivers live in store/postgres and store/sqlite.
package store

import (
	"context"
	"errors"
	"time"

	"github.com/riverqueue/river"
)

var (
	// ErrNotFound is returned when a row does not exist in the scope of the transaction.
	ErrNotFound = errors.New("store: not found")
	// ErrConflict is returned when a unique constraint rejects a write.
	ErrConflict = errors.New("store: conflict")
	// ErrSealed reports records refused by an audit log sealed for erasure.
	ErrSealed = errors.New("store: the audit log is sealed")
	// ErrSchemaTooNew is returned at open when the database was migrated by a newer binary.
	ErrSchemaTooNew = errors.New("store: database schema is newer than this binary")
	// ErrUnavailable wraps an error that says the database could not be reached or dropped the
	// connection (refused, reset, shutting down, a closed pool, a connect timeout): the request did not
	// happen and may be retried once the database is back. The driver's error stays in the chain.
	ErrUnavailable = errors.New("store: database unavailable")
	// ErrNoSchema is returned by the open-existing paths when there is no database, or it holds no
	// Ony schema: commands other than serve and migrate refuse to create an instance.
	ErrNoSchema = errors.New("store: no Ony database")
	// ErrSchemaOld is returned by the open-existing paths when migrations are pending; they do not
	// migrate.
	ErrSchemaOld = errors.New("store: database schema is older than this binary")
	// ErrReadOnly is returned when a ReadOrg transaction tries to write: the database refused it.
	ErrReadOnly = errors.New("store: write in a read-only transaction")
)

// Store is the system of record. Every query runs inside a transaction that is bound either to one
// organization (InOrg) or, for the few lookups that come before the organization is known, to the
// instance (InSystem).
type Store interface {
	InOrg(ctx context.Context, orgID string, fn func(tx OrgTx) error) error
	// ReadOrg is InOrg for reads only: it sees one state of the database throughout, however long
	// it takes and whatever commits meanwhile (audit verification), and on SQLite it runs on a
	// read-only pool beside the writer instead of queueing behind it (a wait's re-read, GET handoff,
	// lists). A write in it fails with ErrReadOnly.
	ReadOrg(ctx context.Context, orgID string, fn func(tx OrgTx) error) error
	InSystem(ctx context.Context, fn func(tx SystemTx) error) error
	// ReadSystem is InSystem for reads only, on the same terms as ReadOrg: every agent request and
	// console page resolves its token through it, so on SQLite it must not take the write lock.
	ReadSystem(ctx context.Context, fn func(tx SystemTx) error) error
	// DeviceByTokenHash finds the device a token hash belongs to (revoked ones too; ErrNotFound if
	// none) in one statement outside any transaction: every agent request makes this lookup.
	DeviceByTokenHash(ctx context.Context, hash []byte) (Device, error)
	// SessionByTokenHash finds the session a token hash belongs to, with its person (ErrNotFound if
	// none; expired sessions and deactivated people too, for the caller to refuse) in one statement
	// outside any transaction: every console page and every decision a person makes resolves one.
	SessionByTokenHash(ctx context.Context, hash []byte) (SessionUser, error)
	// Jobs starts River workers on this store's database; Stop drains them.
	StartJobs(ctx context.Context, workers *river.Workers, cfg JobsConfig) error
	StopJobs(ctx context.Context) error
	// JobCounts counts the queue's jobs in each of states, meant for the unfinished ones: River's
	// (state, …) index serves them, and finished rows, which pile up until River's cleaner deletes
	// them, are not read.
	JobCounts(ctx context.Context, states []string) (map[string]int64, error)
	Ping(ctx context.Context) error
	Close() error
	// Dialect is "postgres" or "sqlite".
	Dialect() string
}

// QueueUpkeep is the job queue of periodic upkeep (the expiry sweep, checkpoints, retention, the
// session sweep). Its own workers take it, so a backlog of rungs in the default queue, which River
// works oldest first, does not hold an expiry back behind it.
const QueueUpkeep = "upkeep"

// JobsConfig tunes the job runner.
type JobsConfig struct {
	PollInterval time.Duration
	Workers      int
	MaxAttempts  int
	// Periodic jobs are scheduled by the elected leader among replicas.
	Periodic []*river.PeriodicJob
	// Timeout bounds one run of a job whose worker declares no Timeout of its own, and is how long a
	// job left running by a killed process waits before it is retried (the runner's rescuer looks
	// every 30 s); a worker with a longer Timeout is rescued after that. Zero means 15 s.
	Timeout time.Duration
}

// OrgTx is a transaction bound to one organization: no method can see or change another org's rows.
// Adding a method here requires an isolation case in storetest (a test enforces it).
type OrgTx interface {
	OrgID() string
	Org(ctx context.Context) (Org, error)
	// LockOrg is Org, and locks the org's row until the transaction ends: changes that must see
	// every change committed before them (a check across rows, a read then a write back) take it
	// first, so they run one at a time.
	LockOrg(ctx context.Context) (Org, error)
	// CreateOrg creates the transaction's own organization (its id is the scope's), so an org and its
	// first admin are created in one transaction.
	CreateOrg(ctx context.Context, o Org) error

	CreateUser(ctx context.Context, u User) error
	UserByID(ctx context.Context, id string) (User, error)
	ListUsers(ctx context.Context) ([]User, error)
	// UpdateUser replaces a user's name, role, timezone, active flag, quiet hours and groups. Email,
	// password, contacts and creation time are not touched.
	UpdateUser(ctx context.Context, u User) error
	// SetPasswordHash replaces a person's password hash; ErrNotFound if the org has no such person.
	SetPasswordHash(ctx context.Context, userID, hash string) error
	// SetContact adds or replaces the person's contact of c.Kind (one per kind).
	SetContact(ctx context.Context, c Contact) error
	// DeleteContact removes the person's contact of kind; a missing one is not an error.
	DeleteContact(ctx context.Context, userID, kind string) error

	CreateDevice(ctx context.Context, d Device) error
	DeviceByID(ctx context.Context, id string) (Device, error)
	RevokeDevice(ctx context.Context, id string, at time.Time) error
	// TouchDevice records that the device's token was used at at; ErrNotFound if there is no such device.
	TouchDevice(ctx context.Context, id string, at time.Time) error
	// ListDevices returns the org's devices, revoked ones included, oldest first (console).
	ListDevices(ctx context.Context) ([]Device, error)

	CreateSession(ctx context.Context, s Session) error
	DeleteSession(ctx context.Context, idHash []byte) error
	// DeleteUserSessions ends every session of a person except the one whose hash is keep (nil: all),
	// and reports how many ended.
	DeleteUserSessions(ctx context.Context, userID string, keep []byte) (int, error)

	InsertHandoff(ctx context.Context, h Handoff) error
	// InsertHandoffLogged is InsertHandoff and AuditEnqueue of the record of its creation, where the
	// database can, in one statement: a create's round trip fewer. A sealed log refuses both
	// (ErrSealed; the caller's transaction must not commit).
	InsertHandoffLogged(ctx context.Context, h Handoff, at time.Time, record []byte) error
	HandoffByID(ctx context.Context, id string) (Handoff, error)
	// HandoffPayload reads a handoff's sealed payload: nil when it has none or retention scrubbed it.
	HandoffPayload(ctx context.Context, id string) ([]byte, error)
	// HandoffWithAgent is HandoffByID and the name of the device that asked for the handoff ("" if it
	// has none or the device is gone), in one query.
	HandoffWithAgent(ctx context.Context, id string) (Handoff, string, error)
	ListHandoffs(ctx context.Context, f HandoffFilter) ([]Handoff, error)
	// FinishHandoff moves a pending handoff to a final status. It reports false, and changes
	// nothing, when the handoff is no longer pending: the first decision wins.
	FinishHandoff(ctx context.Context, id string, status Status, d Decision) (bool, error)
	// SetHandoffGist replaces a handoff's gist (the summarizer's refinement).
	SetHandoffGist(ctx context.Context, id, gist string) error

	// PutLadder stores one version of a ladder; an existing (name, version) is ErrConflict.
	PutLadder(ctx context.Context, l LadderVersion) error
	// Ladders returns the newest version of every ladder of the org, by name.
	Ladders(ctx context.Context) ([]LadderVersion, error)
	// LadderByName returns the newest version of one ladder; ErrNotFound if it has none.
	LadderByName(ctx context.Context, name string) (LadderVersion, error)
	// LadderVersions returns every stored version of one ladder, newest first (console history).
	LadderVersions(ctx context.Context, name string) ([]LadderVersion, error)

	// ClaimSend inserts s if no send with its (HandoffID, Key) exists and reports true; otherwise it
	// changes nothing and returns the existing row with false. This is what makes a retried job
	// idempotent per (handoff, step, target, attempt).
	ClaimSend(ctx context.Context, s Send) (Send, bool, error)
	// ClaimSends is ClaimSend for several sends of one handoff in one statement: it inserts each
	// whose key does not exist yet and reports, per send, whether it was inserted.
	ClaimSends(ctx context.Context, ss []Send) ([]bool, error)
	// SetSendState moves a send to u's state (and provider, ref, detail) only if its current state is
	// one of from (any state when from is empty), reporting whether it changed.
	SetSendState(ctx context.Context, handoffID, key string, from []SendState, u SendUpdate) (bool, error)
	// ListSends returns a handoff's sends in the order they were created (then by key).
	ListSends(ctx context.Context, handoffID string) ([]Send, error)
	// Inbox returns the pending handoffs a person was notified of on the console, newest first.
	Inbox(ctx context.Context, userID string, limit int) ([]Handoff, error)

	// CreateDecisionToken stores a single-use decision token (its hash only).
	CreateDecisionToken(ctx context.Context, t DecisionToken) error
	// UseDecisionToken marks an unused, unexpired token used; false when it was used or expired.
	UseDecisionToken(ctx context.Context, hash []byte, at time.Time) (bool, error)

	IdempotencyRecord(ctx context.Context, deviceID, key string) (Idempotency, error)
	PutIdempotencyRecord(ctx context.Context, r Idempotency) error

	// Enqueue inserts a durable job in this transaction, so it exists if and only if the change commits.
	Enqueue(ctx context.Context, args river.JobArgs, opts *river.InsertOpts) error
	// EnqueueID is Enqueue that also returns the job's id, for a job that may be cancelled later.
	EnqueueID(ctx context.Context, args river.JobArgs, opts *river.InsertOpts) (int64, error)
	// CancelJob deletes the org's job id if it has not started (a job that is running, finished or
	// gone is left alone) and reports whether it did.
	CancelJob(ctx context.Context, id int64) (bool, error)

	// AuditEnqueue queues records for the org's log, unsequenced: they commit with the transaction or
	// not at all, and take no lock. One record is one statement. A sealed log refuses them (ErrSealed).
	AuditEnqueue(ctx context.Context, at time.Time, data ...[]byte) error
	// AuditQueued reads up to limit queued records with ids above afterID, lowest id first.
	AuditQueued(ctx context.Context, afterID int64, limit int) ([]AuditQueued, error)
	// AuditLockHead returns the org's log head, creating it empty, and locks it until the transaction
	// ends, so sequencing of one org is serialised and its indexes contiguous.
	AuditLockHead(ctx context.Context, emptyRoot []byte) (AuditHead, error)
	// AuditSequence stores a batch of leaves at consecutive indexes from b.From (the locked head's
	// size), their stored hashes, the new head, and deletes the queued records they came from; every
	// one of those must still be queued.
	AuditSequence(ctx context.Context, b AuditBatch) error
	// AuditTiles reads the stored hash tiles named by keys (Level, Index; Start and Data are ignored),
	// in any order; a tile never written is missing from the result.
	AuditTiles(ctx context.Context, keys []AuditTile) ([]AuditTile, error)
	// AuditReadPage reads, for verification, up to leafLimit leaves from index leafFrom and the hash
	// tiles that hold the hashes those leaves complete, into p.
	AuditReadPage(ctx context.Context, leafFrom int64, leafLimit int, p *AuditPage) error
	// AuditLeaves reads up to limit leaves from index from, in order.
	AuditLeaves(ctx context.Context, from int64, limit int) ([]AuditLeaf, error)
	// AuditHead reads the head without locking; a log never written to is ErrNotFound.
	AuditHead(ctx context.Context) (AuditHead, error)
	// AuditSeal closes the log to further appends (the first step of erasure); the head must be locked.
	AuditSeal(ctx context.Context, at time.Time) error
	// AuditCheckpoints reads stored checkpoints by ascending size, from size from.
	AuditCheckpoints(ctx context.Context, from int64, limit int) ([]AuditCheckpoint, error)
	AuditPutCheckpoint(ctx context.Context, c AuditCheckpoint) error
	// AuditLatestCheckpoint is the checkpoint with the largest size; ErrNotFound if none.
	AuditLatestCheckpoint(ctx context.Context) (AuditCheckpoint, error)
	// AuditHandoffStates calls fn with every handoff's id and status, in no set order: what audit
	// verification checks the log against. An index holds both, so the rows themselves are not read.
	AuditHandoffStates(ctx context.Context, fn func(id string, status Status) error) error

	// Identity (issue 13): one-time codes for invites and password resets, org settings, activity.

	// CreateCode stores a one-time code (its hash only).
	CreateCode(ctx context.Context, c OneTimeCode) error
	// UseCode marks the code with id used at at, if it is unused and unexpired; false otherwise (used,
	// expired, superseded or unknown). Of two concurrent uses exactly one reports true.
	UseCode(ctx context.Context, id string, at time.Time) (bool, error)
	// SupersedeCodes ends every unused code of purpose for email (marks it used at at), so only the
	// newest invite or reset link works; it reports how many it ended.
	SupersedeCodes(ctx context.Context, purpose CodePurpose, email string, at time.Time) (int, error)
	// UpdateOrgSettings replaces the org's step-up risks and payload retention (0 = keep).
	UpdateOrgSettings(ctx context.Context, stepUpRisks []string, retentionDays int) error
	// TouchUser records that a person was active at at; ErrNotFound if the org has no such person.
	TouchUser(ctx context.Context, userID string, at time.Time) error
	// --- totp & sessions (issue 13, totp helper) ---
	// UserSessions lists a person's sessions, newest first.
	UserSessions(ctx context.Context, userID string) ([]Session, error)
	// DeleteUserSession ends the person's session named by its public id; ErrNotFound if they have none
	// by that id (another person's included).
	DeleteUserSession(ctx context.Context, userID, publicID string) error
	// TouchSession records that a session was used at at (its idle timeout restarts).
	TouchSession(ctx context.Context, idHash []byte, at time.Time) error
	// UserTOTP reads a person's TOTP row; ErrNotFound if they have none.
	UserTOTP(ctx context.Context, userID string) (UserTOTP, error)
	// ListUserTOTP reads every TOTP row of the org (rekeying).
	ListUserTOTP(ctx context.Context) ([]UserTOTP, error)
	// PutPendingTOTP stores a new, unconfirmed secret, replacing an unconfirmed one; ErrConflict when
	// the person has a confirmed one.
	PutPendingTOTP(ctx context.Context, t UserTOTP) error
	// ConfirmTOTP confirms the pending secret and spends step, if step is newer than the last one
	// spent; false (and no change) otherwise.
	ConfirmTOTP(ctx context.Context, userID string, step int64, at time.Time) (bool, error)
	// UseTOTPStep spends step for a confirmed secret if it is newer than the last one spent: the one
	// write that makes a code valid once, even under concurrent use. false when it was not newer.
	UseTOTPStep(ctx context.Context, userID string, step int64) (bool, error)
	// SetTOTPSecret replaces the sealed secret (rekeying); ErrNotFound when there is no row.
	SetTOTPSecret(ctx context.Context, userID string, secret []byte) error
	// DeleteUserTOTP removes a person's TOTP row; a missing one is not an error.
	DeleteUserTOTP(ctx context.Context, userID string) error
	CreateLoginChallenge(ctx context.Context, c LoginChallenge) error
	// CountChallengeAttempt counts one attempt at the challenge; false when it had max attempts
	// already or does not exist.
	CountChallengeAttempt(ctx context.Context, idHash []byte, max int) (bool, error)
	// DeleteLoginChallenge removes a challenge; a missing one is not an error.
	DeleteLoginChallenge(ctx context.Context, idHash []byte) error
	// --- end totp & sessions ---

	// Chat (issue 14): finding the person behind a chat account, and link codes.

	// UserByContact returns the person whose contact of kind has address (with their contacts);
	// ErrNotFound if none, ErrConflict if more than one person has it (a caller treats that as none).
	UserByContact(ctx context.Context, kind, address string) (User, error)
	// CreateLinkCode stores a link code (its hash only) and ends every open code of the same person
	// and kind (marks it used at c.CreatedAt), so only the newest one works.
	CreateLinkCode(ctx context.Context, c LinkCode) error
	// UseLinkCode marks the code used at at, if it is unused and unexpired; false otherwise. Of two
	// concurrent uses exactly one reports true.
	UseLinkCode(ctx context.Context, hash []byte, at time.Time) (bool, error)

	// Payload retention (issue 17).

	// ScrubPayloads removes the sealed payload of up to limit (1..1000) handoffs that are no longer
	// pending and were created before before, oldest first, and reports how many it scrubbed. Kind and size stay,
	// and so does every other field: the handoff is still listed, its decision and audit leaves intact.
	ScrubPayloads(ctx context.Context, before time.Time, limit int) (int, error)
	// CountScrubbablePayloads counts the handoffs ScrubPayloads would scrub, all of them (a dry run).
	CountScrubbablePayloads(ctx context.Context, before time.Time) (int, error)
}

// Scrubber is a store whose files can keep what a committed erasure deleted (SQLite's write-ahead
// log holds pages as they were until it is checkpointed); Scrub, run after an erasure, clears it.
type Scrubber interface {
	Scrub(ctx context.Context) error
}

// SystemTx serves the lookups that precede knowing the organization: bootstrap, login, and
// resolving a credential to its owner.
type SystemTx interface {
	CountOrgs(ctx context.Context) (int, error)
	UserByEmail(ctx context.Context, email string) (User, error)
	// DecisionTokenByHash resolves a decision token from a chat button, SMS reply or call to its org.
	DecisionTokenByHash(ctx context.Context, hash []byte) (DecisionToken, error)
	// OpenDecisionTokensTo lists the unused tokens, unexpired at now, sent on channel to a person whose
	// contact of contactKind has address, in every org: an SMS reply names only a short code and comes
	// from a phone number, so its token is found among these. Oldest first, at most 100.
	OpenDecisionTokensTo(ctx context.Context, contactKind, address, channel string, now time.Time) ([]DecisionToken, error)
	// SendByRef finds the send a provider knows by its own id (a message id, a call sid), for a status
	// callback that carries nothing else. ErrNotFound if none; ErrConflict if the reference is not
	// unique, which a caller must treat as not found.
	SendByRef(ctx context.Context, provider, ref string) (Send, error)
	DeleteExpiredSessions(ctx context.Context, now time.Time) (int, error)
	// LoginChallengeByHash finds a two-step sign-in's challenge (totp helper, issue 13).
	LoginChallengeByHash(ctx context.Context, idHash []byte) (LoginChallenge, error)
	// DeleteExpiredChallenges removes challenges that expired before now (totp helper, issue 13).
	DeleteExpiredChallenges(ctx context.Context, now time.Time) (int, error)
	// OrgIDs lists every organization.
	OrgIDs(ctx context.Context) ([]string, error)
	// DueHandoffs lists pending handoffs of every organization whose expires_at is at or before now,
	// earliest first, at most limit: what the expiry sweep ends next (issue 12).
	DueHandoffs(ctx context.Context, now time.Time, limit int) ([]HandoffRef, error)
	// AuditLogIDs lists every log that has a head: organizations' and the instance's.
	AuditLogIDs(ctx context.Context) ([]string, error)
	// AuditQueuedLogIDs lists every log with queued, unsequenced records.
	AuditQueuedLogIDs(ctx context.Context) ([]string, error)
	// EraseOrg deletes an organization and everything under it, its audit log included. It is the only
	// path that may delete audit rows; the caller records a tombstone in the instance log.
	EraseOrg(ctx context.Context, orgID string) error

	// Identity (issue 13): a link carries a code but no organization.

	// CodeByHash resolves a one-time code to its row (used or not); ErrNotFound if unknown.
	CodeByHash(ctx context.Context, hash []byte) (OneTimeCode, error)
	// OpenCodeByEmail returns the newest unused, unexpired code of purpose for email, in any org
	// (single sign-on joining an invited email); ErrNotFound if none.
	OpenCodeByEmail(ctx context.Context, purpose CodePurpose, email string, now time.Time) (OneTimeCode, error)

	// LinkCodeByHash resolves a chat link code to its row (used or not); ErrNotFound if unknown
	// (chat, issue 14: the bot knows no organization).
	LinkCodeByHash(ctx context.Context, hash []byte) (LinkCode, error)
}

// InstanceLogID is the reserved organization id of the instance's own audit log (erasure tombstones).
const InstanceLogID = "00000000-0000-0000-0000-000000000000"

// AuditHead is a log's size and root hash.
type AuditHead struct {
	Size      int64
	Root      []byte
	UpdatedAt time.Time
	// Sealed is set once the organization's erasure has begun: no more leaves.
	Sealed bool
	// Frontier is the hashes of the tree's right edge, the complete subtrees that make up Size
	// leaves, largest first, 32 bytes each: all the sequencer needs to add leaves. Empty on heads
	// written before it was kept (migration 0010); the sequencer rebuilds it from stored hashes.
	Frontier []byte
}

// AuditPage is a page of a log read for verification, in buffers that are reused from page to page so
// that reading a large log allocates little.
type AuditPage struct {
	Index []int64 // leaf indexes; -1 where a stored bundle is malformed
	Data  []byte  // the leaves' bytes back to back; leaf k is Data[Ends[k-1]:Ends[k]] (from 0 for k = 0)
	Ends  []int
	// Tiles are the hash tiles holding the hashes the page's leaves complete, by level then index;
	// their Data share one buffer that is reused from page to page.
	Tiles    []AuditTile
	TileData []byte
}

// Leaf returns the bytes of the page's k-th leaf.
func (p *AuditPage) Leaf(k int) []byte {
	start := 0
	if k > 0 {
		start = p.Ends[k-1]
	}
	return p.Data[start:p.Ends[k]]
}

// AuditQueued is a record waiting for the sequencer to give it an index.
type AuditQueued struct {
	ID        int64
	Data      []byte
	CreatedAt time.Time
}

// AuditBatch is what one sequencing step writes.
type AuditBatch struct {
	From   int64       // the head's size before the batch: Leaves[i] has index From+i
	Leaves []AuditLeaf // Index set
	// Tiles are what the leaves add to the hash tiles: for each tile touched, the hashes appended
	// after its first Start ones (Start 0: a new tile).
	Tiles   []AuditTile
	Head    AuditHead // the new head: Size = From + len(Leaves)
	Dequeue []int64   // the queued records' ids
}

// AuditTileHeight is the height of the hash tiles: a tile of level L holds up to 2^AuditTileHeight
// consecutive hashes of the tree's level L·AuditTileHeight (tlog's tiles; the hashes of the levels in
// between are computed from them).
const AuditTileHeight = 8

// AuditTileWidth is how many hashes a full tile holds.
const AuditTileWidth = 1 << AuditTileHeight

// AuditTile is a stretch of one hash tile: the hashes of tree level Level·AuditTileHeight from
// position Index·AuditTileWidth+Start on, 32 bytes each, back to back. A tile only grows: a row is
// extended while its tile fills, never changed.
type AuditTile struct {
	Level int
	Index int64
	Start int // hashes before Data in the tile (0 when Data is the tile from its start)
	Data  []byte
}

// AuditLeaf is one record, stored as the exact bytes that were hashed, in its bundle (see
// AuditBundleWidth).
type AuditLeaf struct {
	Index int64
	Data  []byte
}

// AuditCheckpoint is a signed note committing to a log's size and root.
type AuditCheckpoint struct {
	Size      int64
	Note      []byte
	CreatedAt time.Time
}

// Role is what a member may do in their organization.
type Role string

const (
	RoleAdmin  Role = "admin"
	RoleMember Role = "member"
	RoleViewer Role = "viewer"
)

// Valid reports whether r is a known role.
func (r Role) Valid() bool { return r == RoleAdmin || r == RoleMember || r == RoleViewer }

// CanDecide reports whether the role may approve or deny handoffs.
func (r Role) CanDecide() bool { return r == RoleAdmin || r == RoleMember }

// Org is a tenant.
type Org struct {
	ID         string
	Name       string
	MaxTimeout time.Duration
	CreatedAt  time.Time
	// StepUpRisks are the risks whose approval needs a TOTP step-up. A new org starts with high and
	// critical (CreateOrg does not set it; UpdateOrgSettings does).
	StepUpRisks []string
	// PayloadRetentionDays is how long payloads are kept; 0 = until the handoff is erased.
	PayloadRetentionDays int
}

// User is a person in an organization.
type User struct {
	OrgID        string
	ID           string
	Email        string // lower-cased
	Name         string
	PasswordHash string
	Role         Role
	Timezone     string // IANA name, e.g. Europe/Lisbon
	Active       bool
	CreatedAt    time.Time
	// Contacts are how the person is reached, at most one of each kind, ordered by kind.
	Contacts []Contact
	// QuietHours is "HH:MM-HH:MM" in the user's Timezone (may wrap midnight); empty = none.
	QuietHours string
	// Groups name the teams a ladder can target as group:<name>.
	Groups []string
	// LastActiveAt is when the person was last seen signed in (TouchUser); nil = never. Not written by
	// CreateUser or UpdateUser.
	LastActiveAt *time.Time
}

// Contact returns the person's contact of kind.
func (u User) Contact(kind string) (Contact, bool) {
	for _, c := range u.Contacts {
		if c.Kind == kind {
			return c, true
		}
	}
	return Contact{}, false
}

// Contact is one way a person is reached: a phone number, a Slack member id, a Telegram chat id.
// Kind names a channel.ContactKind.
type Contact struct {
	OrgID   string
	UserID  string
	Kind    string
	Address string
	// VerifiedAt is when the address was verified, or vouched for by an operator; nil = not yet.
	VerifiedAt *time.Time
	CreatedAt  time.Time
}

// Device is an agent credential. Only the token's hash is kept.
type Device struct {
	OrgID       string
	ID          string
	Name        string
	TokenHash   []byte
	CallbackKey []byte
	CreatedAt   time.Time
	RevokedAt   *time.Time
	// LastUsedAt is when the token last authenticated a request (to the minute); nil if never.
	LastUsedAt *time.Time
}

// Session is a signed-in person. Only the session id's hash is kept.
type Session struct {
	OrgID     string
	IDHash    []byte
	UserID    string
	CreatedAt time.Time
	ExpiresAt time.Time
	// PublicID names the session in lists and revocation (never the secret); the store generates one
	// when it is empty. LastSeenAt is when it was last used (CreatedAt when zero); UserAgent is the
	// browser that opened it, already cleaned by the caller.
	PublicID   string
	LastSeenAt time.Time
	UserAgent  string
}

// SessionUser is a session and what a request needs of its person.
type SessionUser struct {
	Session Session
	Name    string
	Role    Role
	Active  bool
}

// UserTOTP is a person's TOTP secret, sealed with the keyring (totp helper, issue 13).
type UserTOTP struct {
	OrgID       string
	UserID      string
	Secret      []byte // keyring-sealed
	ConfirmedAt *time.Time
	LastStep    int64
	CreatedAt   time.Time
}

// LoginChallenge is a sign-in whose password was right and whose TOTP code is still owed.
type LoginChallenge struct {
	OrgID     string
	IDHash    []byte
	UserID    string
	ExpiresAt time.Time
	Attempts  int
}

// Status is where a handoff is in its life.
type Status string

const (
	StatusPending   Status = "pending"
	StatusApproved  Status = "approved"
	StatusDenied    Status = "denied"
	StatusExpired   Status = "expired"
	StatusCancelled Status = "cancelled"
)

// Final reports whether no further change can happen.
func (s Status) Final() bool { return s != StatusPending }

// Valid reports whether s is a known status.
func (s Status) Valid() bool {
	switch s {
	case StatusPending, StatusApproved, StatusDenied, StatusExpired, StatusCancelled:
		return true
	}
	return false
}

// Option is one answer a human can give.
type Option struct {
	ID       string `json:"id"`
	Label    string `json:"label"`
	Approves bool   `json:"approves"`
}

// ActorKind says who acted.
type ActorKind string

const (
	ActorUser   ActorKind = "user"
	ActorDevice ActorKind = "device"
	ActorSystem ActorKind = "system"
)

// Decision is how a handoff reached its final status.
type Decision struct {
	OptionID  string // empty for expiry and cancellation
	ByKind    ActorKind
	ByID      string
	ByName    string
	Channel   string // api, console, slack, telegram, sms, call, system
	Comment   string
	DecidedAt time.Time
}

// HandoffRef names one handoff across organizations.
type HandoffRef struct {
	OrgID string
	ID    string
}

// Handoff is an agent's request for a human decision.
type Handoff struct {
	OrgID    string
	ID       string
	DeviceID string
	Action   string
	Title    string
	Summary  string
	// Gist is the secret-free text channels carry.
	Gist        string
	Risk        string
	RiskReasons []string
	Options     []Option
	Labels      map[string]string
	PayloadKind string
	PayloadSize int
	// PayloadSealed is the payload encrypted at rest, as InsertHandoff writes it. Reads of handoffs
	// leave it nil, whatever its size (a megabyte each by default, handoffs.max_payload_bytes, where a
	// list reads fifty handoffs and a waiting agent re-reads one every few seconds): HandoffPayload
	// reads it, and PayloadKept says whether there is one.
	PayloadSealed []byte
	// PayloadKept is set by reads: the handoff holds a sealed payload (none was given, or retention
	// scrubbed it, when false).
	PayloadKept bool
	CallbackURL string
	Status      Status
	CreatedAt   time.Time
	ExpiresAt   time.Time
	Decision    *Decision
	// The ladder in force when the handoff was created, frozen onto it (JSON of escalation.Ladder).
	LadderName    string
	LadderVersion int
	Ladder        []byte
}

// HandoffFilter narrows ListHandoffs.
type HandoffFilter struct {
	Status   Status // empty = any
	DeviceID string // empty = any device
	Limit    int    // 1..500; 0 = 100
}

// Idempotency remembers which handoff an Idempotency-Key produced, and from which request.
type Idempotency struct {
	OrgID       string
	DeviceID    string
	Key         string
	RequestHash []byte
	HandoffID   string
	CreatedAt   time.Time
}

// LadderVersion is one stored version of an organization's escalation ladder.
type LadderVersion struct {
	OrgID     string
	Name      string
	Version   int
	Source    []byte // the YAML as the admin sent it
	CreatedBy string // user id
	CreatedAt time.Time
}

// SendState is where one notification is.
type SendState string

const (
	SendSending   SendState = "sending"   // claimed; the provider was (or is being) called
	SendSent      SendState = "sent"      // the provider accepted it
	SendDelivered SendState = "delivered" // the provider reports it reached the person
	SendAnswered  SendState = "answered"  // a call was picked up
	SendNoAnswer  SendState = "no_answer" // a call rang out
	SendBusy      SendState = "busy"
	SendFailed    SendState = "failed"  // every provider errored
	SendCapped    SendState = "capped"  // a rate limit or cost cap stopped it
	SendQuiet     SendState = "quiet"   // the person was in quiet hours
	SendSkipped   SendState = "skipped" // nothing to do (no contact method, already decided)
	SendStepDone  SendState = "step"    // marker: a step's fan-out was committed
)

// Send is one notification of one target on one channel for one step attempt of a handoff.
type Send struct {
	OrgID     string
	HandoffID string
	// Key is unique per handoff: climb.step.channel.target.attempt.
	Key       string
	Climb     int
	Step      int
	Attempt   int
	Channel   string
	Target    string // a user id, or a team address such as webhook:teams
	Provider  string
	State     SendState
	Ref       string // the provider's message or call id, to update it after the decision
	Detail    string // a short code, e.g. rate_limited or provider_error; never free text
	CreatedAt time.Time
	UpdatedAt time.Time
}

// SendUpdate is the new state of a send.
type SendUpdate struct {
	State    SendState
	Provider string
	Ref      string
	Detail   string
	At       time.Time
}

// DecisionToken lets one person decide one handoff once, from a channel that has no session. A team
// token (a post in a shared channel) has no UserID and names its destination in Target instead: the
// person who answers is resolved from their chat account. Exactly one of UserID and Target is set.
type DecisionToken struct {
	OrgID     string
	Hash      []byte
	HandoffID string
	UserID    string // "" for a team token
	Target    string // the team destination (slack:#incidents); "" for a person's token
	Channel   string
	CreatedAt time.Time
	ExpiresAt time.Time
	UsedAt    *time.Time
}

// CodePurpose says what a one-time code is for.
type CodePurpose string

const (
	CodeInvite CodePurpose = "invite"
	CodeReset  CodePurpose = "reset"
)

// OneTimeCode is an invite or password-reset link's code. Only its SHA-256 is kept.
type OneTimeCode struct {
	OrgID   string
	ID      string
	Purpose CodePurpose
	Email   string // lower-cased
	UserID  string // the person a reset is for; empty for an invite
	Role    Role   // the role an invite grants; empty for a reset
	Hash    []byte
	// CreatedBy is the user id of the admin who invited, or "" (a reset asked for by its owner).
	CreatedBy string
	CreatedAt time.Time
	ExpiresAt time.Time
	UsedAt    *time.Time
}

// LinkCode is a short code a person sends to a chat bot to link that chat account to themselves.
// Only its SHA-256 is kept.
type LinkCode struct {
	OrgID     string
	Hash      []byte
	UserID    string
	Kind      string // the channel kind the code links (slack, telegram)
	CreatedAt time.Time
	ExpiresAt time.Time
	UsedAt    *time.Time
}
