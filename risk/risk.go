// Package risk derives how dangerous a handoff is on the server, from its action, payload and labels.
// The agent's own claim never enters: Input has no field for it.
package risk

import (
	"fmt"
	"slices"
	"strings"
)

// Level orders risk. The zero value is deliberately invalid so that a
// forgotten assignment is caught by validation rather than read as Low.
type Level int

// Risk levels, from least to most dangerous.
const (
	Low Level = iota + 1
	Medium
	High
	Critical
)

// Valid reports whether l is one of Low, Medium, High, Critical.
func (l Level) Valid() bool { return l >= Low && l <= Critical }

func (l Level) String() string {
	switch l {
	case Low:
		return "low"
	case Medium:
		return "medium"
	case High:
		return "high"
	case Critical:
		return "critical"
	}
	return fmt.Sprintf("level(%d)", int(l))
}

// ParseLevel accepts the names produced by String, ignoring case and
// surrounding space, because levels also arrive from config files.
func ParseLevel(s string) (Level, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "low":
		return Low, nil
	case "medium":
		return Medium, nil
	case "high":
		return High, nil
	case "critical":
		return Critical, nil
	}
	return 0, fmt.Errorf("risk: unknown level %q", s)
}

// MarshalText refuses invalid levels so that one never reaches a client.
func (l Level) MarshalText() ([]byte, error) {
	if !l.Valid() {
		return nil, fmt.Errorf("risk: invalid level %d", int(l))
	}
	return []byte(l.String()), nil
}

func (l *Level) UnmarshalText(b []byte) error {
	v, err := ParseLevel(string(b))
	if err != nil {
		return err
	}
	*l = v
	return nil
}

// Reason is a stable, machine-readable code for why a level was raised.
// The set is closed so that clients can map every code to a message.
type Reason string

// Reason codes. Keep AllReasons in sync.
const (
	ReasonRecursiveDelete       Reason = "recursive_delete"
	ReasonPrivilegeEscalation   Reason = "privilege_escalation"
	ReasonPipeToShell           Reason = "pipe_to_shell"
	ReasonWorldWritable         Reason = "world_writable"
	ReasonSystemPathWrite       Reason = "system_path_write"
	ReasonDiskOverwrite         Reason = "disk_overwrite"
	ReasonForcePush             Reason = "force_push"
	ReasonProtectedBranchPush   Reason = "protected_branch_push"
	ReasonSQLDrop               Reason = "sql_drop"
	ReasonSQLTruncate           Reason = "sql_truncate"
	ReasonSQLUnboundedDelete    Reason = "sql_unbounded_delete"
	ReasonSQLUnboundedUpdate    Reason = "sql_unbounded_update"
	ReasonSQLAlter              Reason = "sql_alter"
	ReasonInfraDestroy          Reason = "infra_destroy"
	ReasonK8sDelete             Reason = "k8s_delete"
	ReasonScaleToZero           Reason = "scale_to_zero"
	ReasonProductionEnvironment Reason = "production_environment"
	ReasonPayment               Reason = "payment"
	ReasonDeploy                Reason = "deploy"
	ReasonSchemaMigration       Reason = "schema_migration"
	ReasonInfraChange           Reason = "infra_change"
	ReasonFileDelete            Reason = "file_delete"
	// ReasonOrgPolicy is reported by an organisation's policy floors (see
	// Policy), which raise a level for an action or label rather than for
	// something found in the payload. No built-in rule uses it.
	ReasonOrgPolicy Reason = "org_policy"
)

// AllReasons returns every reason code, in declaration order. It returns a
// fresh slice so callers cannot alter the set.
func AllReasons() []Reason {
	return []Reason{
		ReasonRecursiveDelete,
		ReasonPrivilegeEscalation,
		ReasonPipeToShell,
		ReasonWorldWritable,
		ReasonSystemPathWrite,
		ReasonDiskOverwrite,
		ReasonForcePush,
		ReasonProtectedBranchPush,
		ReasonSQLDrop,
		ReasonSQLTruncate,
		ReasonSQLUnboundedDelete,
		ReasonSQLUnboundedUpdate,
		ReasonSQLAlter,
		ReasonInfraDestroy,
		ReasonK8sDelete,
		ReasonScaleToZero,
		ReasonProductionEnvironment,
		ReasonPayment,
		ReasonDeploy,
		ReasonSchemaMigration,
		ReasonInfraChange,
		ReasonFileDelete,
		ReasonOrgPolicy,
	}
}

// KnownReason reports whether r is one of the codes in AllReasons.
func KnownReason(r Reason) bool { return slices.Contains(AllReasons(), r) }

// Payload kinds an Input may carry. An empty kind means the agent did not say.
const (
	KindCommand = "command"
	KindDiff    = "diff"
	KindLog     = "log"
	KindText    = "text"
)

func knownKind(k string) bool {
	switch k {
	case KindCommand, KindDiff, KindLog, KindText, "":
		return true
	}
	return false
}

// Input is what the server knows about a handoff. It has no field for the
// agent's own risk claim on purpose.
type Input struct {
	Action      string
	PayloadKind string
	Payload     string
	Labels      map[string]string
}

// Assessment is the derived risk. Reasons and Rules follow table order (the
// action base first, then the rules) so that equal inputs give equal output.
type Assessment struct {
	Level   Level
	Reasons []Reason
	Rules   []string
}
