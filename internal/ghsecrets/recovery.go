package ghsecrets

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// RecoveryPrefix starts every recovery record.
const RecoveryPrefix = "wizard-recovery-v1."

// Record holds values that were sealed for a target's key but could not be
// written. It is safe to print: only GitHub, holding the private key, can
// open the ciphertext. Restoring it PUTs the ciphertext as it is, with the
// same key id.
type Record struct {
	Version     int       `json:"v"`
	Owner       string    `json:"owner,omitempty"`
	Repo        string    `json:"repo,omitempty"`
	Environment string    `json:"environment,omitempty"`
	Org         string    `json:"org,omitempty"`
	KeyID       string    `json:"key_id"`
	Created     time.Time `json:"created"`
	Secrets     []Sealed  `json:"secrets"`
}

// NewRecord builds a record for the target.
func NewRecord(t Target, keyID string, created time.Time, secrets []Sealed) *Record {
	return &Record{Version: 1, Owner: t.Owner, Repo: t.Repo, Environment: t.Environment, Org: t.Org, KeyID: keyID, Created: created.UTC().Truncate(time.Second), Secrets: secrets}
}

// Target is the record's target (visibility settings are not recorded: an
// organization secret's own are carried per secret).
func (r *Record) Target() Target {
	return Target{Owner: r.Owner, Repo: r.Repo, Environment: r.Environment, Org: r.Org}
}

// Encode renders the record as one printable line.
func (r *Record) Encode() string {
	b, err := json.Marshal(r)
	if err != nil {
		panic(fmt.Sprintf("marshal recovery record: %v", err)) // plain strings and a time: cannot fail
	}
	return RecoveryPrefix + base64.RawURLEncoding.EncodeToString(b)
}

var (
	recordToken = regexp.MustCompile(`wizard-recovery-v1\.[A-Za-z0-9_-]+`)
	secretName  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

// ParseRecord finds and decodes a recovery record in s (a log line, a
// summary, or the record alone).
func ParseRecord(s string) (*Record, error) {
	m := recordToken.FindString(s)
	if m == "" {
		return nil, errors.New("failed to parse recovery record: no " + RecoveryPrefix + " record found")
	}
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(m, RecoveryPrefix))
	if err != nil {
		return nil, fmt.Errorf("failed to parse recovery record: %w", err)
	}
	var r Record
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("failed to parse recovery record: %w", err)
	}
	if err := r.validate(); err != nil {
		return nil, fmt.Errorf("failed to parse recovery record: %w", err)
	}
	return &r, nil
}

func (r *Record) validate() error {
	switch {
	case r.Version != 1:
		return fmt.Errorf("unsupported version %d", r.Version)
	case r.KeyID == "":
		return errors.New("no key id")
	case len(r.Secrets) == 0:
		return errors.New("no secrets")
	case r.Org == "" && (r.Owner == "" || r.Repo == ""):
		return errors.New("no target")
	case r.Org != "" && (r.Owner != "" || r.Environment != ""):
		return errors.New("both an organization and a repository")
	}
	for _, s := range r.Secrets {
		if !secretName.MatchString(s.Name) {
			return fmt.Errorf("bad secret name %q", s.Name)
		}
		raw, err := base64.StdEncoding.DecodeString(s.EncryptedValue)
		if err != nil || len(raw) < 48 {
			return fmt.Errorf("secret %s: ciphertext is not a sealed box", s.Name)
		}
	}
	return nil
}
