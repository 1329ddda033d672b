// Package session reads the Amplitude wizard's stored OAuth session and
// hands it off after the bootstrap pushed it to CI.
//
// The wizard keeps its session in $AMPLITUDE_WIZARD_CACHE_DIR/oauth-session.json
// (default ~/.amplitude/wizard/oauth-session.json) and, during its migration,
// mirrors it into the legacy ~/.ampli.json that the ampli CLI uses. Both
// files are one JSON object; user entries are keyed "User-<id>" for zone us
// and "User[<zone>]-<id>" for the other zones:
//
//	{
//	  "User-123": {
//	    "User": {"id": "123", "email": "a@example.com", "zone": "us", ...},
//	    "OAuthAccessToken": "...",
//	    "OAuthIdToken": "...",
//	    "OAuthRefreshToken": "...",
//	    "OAuthExpiresAt": "2026-01-02T15:04:05.000Z"
//	  }
//	}
//
// The hand-off removes one entry's OAuthRefreshToken and nothing else: the
// file is rewritten byte for byte except for that member, atomically, with
// mode 0600. Like encoding/json, which Parse uses, the hand-off matches the
// member name case-insensitively ("oauthRefreshToken" is read, so it is
// removed too); an entry with several spellings loses every one that holds
// a refresh token.
package session

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/amplitude/wizard-oauth-refresh/internal/inputs"
)

// File names and the environment variable the wizard honors.
const (
	FileName       = "oauth-session.json"
	LegacyFileName = ".ampli.json"
	CacheDirEnv    = "AMPLITUDE_WIZARD_CACHE_DIR"
)

// RefreshWindow is how long after OAuthExpiresAt the wizard still trusts a
// stored refresh token (src/utils/ampli-settings.ts: expiresAt + 364 days).
const RefreshWindow = 364 * 24 * time.Hour

// MaxFileBytes bounds a session file read.
const MaxFileBytes = 1 << 20

// PendingUserID is the placeholder user the wizard stores when it could not
// fetch the user's profile yet.
const PendingUserID = "pending"

// Kind classifies a session problem.
type Kind int

// The kinds of session problems.
const (
	KindNoFile         Kind = iota + 1 // neither file exists
	KindUnreadable                     // the file exists but cannot be read
	KindMalformed                      // not JSON, not an object, or a field of the wrong type
	KindNoEntry                        // no user entry (for the zone)
	KindAmbiguous                      // entries of several zones and no zone chosen
	KindNoRefreshToken                 // the entry has no refresh token
	KindExpired                        // the refresh window is over
	KindChanged                        // the file changed between the read and the hand-off
)

// Error is a session problem. Its message never quotes a token.
type Error struct {
	Kind Kind
	Path string
	Msg  string
	Err  error
}

func (e *Error) Error() string {
	msg := e.Msg
	if e.Path != "" {
		msg = e.Path + ": " + msg
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// KindOf returns the kind of a session error (0 for other errors).
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return 0
}

// Paths are the two places the wizard keeps its session.
type Paths struct {
	Canonical string
	Legacy    string
}

// Locate returns the session file paths for this user: the cache directory
// comes from AMPLITUDE_WIZARD_CACHE_DIR, else ~/.amplitude/wizard; the legacy
// file is ~/.ampli.json. HOME (USERPROFILE on Windows) is read with getenv.
func Locate(getenv func(string) string) (Paths, error) {
	home := getenv("HOME")
	if home == "" && runtime.GOOS == "windows" {
		home = getenv("USERPROFILE")
	}
	cache := getenv(CacheDirEnv)
	if home == "" && cache == "" {
		return Paths{}, errors.New("cannot find the wizard session: neither HOME nor " + CacheDirEnv + " is set")
	}
	p := Paths{}
	if cache != "" {
		p.Canonical = filepath.Join(cache, FileName)
	} else {
		p.Canonical = filepath.Join(home, ".amplitude", "wizard", FileName)
	}
	if home != "" {
		p.Legacy = filepath.Join(home, LegacyFileName)
	}
	return p, nil
}

// Find picks the file to read: the canonical one whenever it exists (even
// when it holds no session: the wizard signed out, and the legacy file may
// hold a stale copy), else the legacy one.
func Find(p Paths) (path string, legacy bool, err error) {
	if _, err := os.Stat(p.Canonical); err == nil {
		return p.Canonical, false, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", false, &Error{Kind: KindUnreadable, Path: p.Canonical, Msg: "cannot read the wizard session", Err: unwrapPath(err)}
	}
	if p.Legacy != "" {
		if _, err := os.Stat(p.Legacy); err == nil {
			return p.Legacy, true, nil
		} else if !errors.Is(err, fs.ErrNotExist) {
			return "", false, &Error{Kind: KindUnreadable, Path: p.Legacy, Msg: "cannot read the legacy session", Err: unwrapPath(err)}
		}
	}
	where := p.Canonical
	if p.Legacy != "" {
		where += " (nor " + p.Legacy + ")"
	}
	return "", false, &Error{Kind: KindNoFile, Msg: "no wizard session found at " + where}
}

// Entry is one stored user session.
type Entry struct {
	// Key is the entry's key, e.g. "User-123" or "User[eu]-123".
	Key string
	// Zone comes from the key: "us" for User-<id>, else the bracketed zone
	// (lower case).
	Zone   string
	UserID string
	Email  string

	AccessToken  string
	IDToken      string
	RefreshToken string
	// ExpiresAt is OAuthExpiresAt (the access token's expiry); zero when
	// absent or unparseable, with ExpiresAtRaw keeping what was stored.
	ExpiresAt    time.Time
	ExpiresAtRaw string
}

// Pending reports whether the entry is the wizard's placeholder user.
func (e *Entry) Pending() bool { return e.UserID == PendingUserID }

// RefreshUntil is when the wizard stops trusting the refresh token.
func (e *Entry) RefreshUntil() time.Time { return e.ExpiresAt.Add(RefreshWindow) }

// Describe names the entry for messages (never a token).
func (e *Entry) Describe() string {
	who := e.Email
	if who == "" {
		who = "user " + e.UserID
	}
	if e.Pending() {
		who = "pending user (profile not fetched yet)"
	}
	return fmt.Sprintf("%s, zone %s (entry %s)", who, e.Zone, e.Key)
}

// File is a parsed session file.
type File struct {
	Path    string
	Entries []Entry // user entries, in file order
}

// Load reads and parses a session file.
func Load(path string) (*File, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, data)
}

func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, &Error{Kind: KindNoFile, Path: path, Msg: "no such file"}
	}
	if err != nil {
		return nil, &Error{Kind: KindUnreadable, Path: path, Msg: "cannot read the session file", Err: unwrapPath(err)}
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileBytes+1))
	if err != nil {
		return nil, &Error{Kind: KindUnreadable, Path: path, Msg: "cannot read the session file", Err: unwrapPath(err)}
	}
	if len(data) > MaxFileBytes {
		return nil, &Error{Kind: KindMalformed, Path: path, Msg: fmt.Sprintf("larger than %d bytes: not a wizard session file", MaxFileBytes)}
	}
	return data, nil
}

// unwrapPath drops the *PathError wrapper (the path is already named).
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// entryJSON is the wire form of an entry. Pointers tell absent from empty.
type entryJSON struct {
	User *struct {
		ID    *string `json:"id"`
		Email *string `json:"email"`
	} `json:"User"`
	OAuthAccessToken  *string `json:"OAuthAccessToken"`
	OAuthIDToken      *string `json:"OAuthIdToken"`
	OAuthRefreshToken *string `json:"OAuthRefreshToken"`
	OAuthExpiresAt    *string `json:"OAuthExpiresAt"`
}

// Parse parses a session file's content.
func Parse(path string, data []byte) (*File, error) {
	obj, err := scanObject(data)
	if err != nil {
		return nil, &Error{Kind: KindMalformed, Path: path, Msg: "not a wizard session file (want a JSON object)", Err: err}
	}
	f := &File{Path: path}
	for _, m := range obj.members {
		zone, id, ok := parseKey(m.key)
		if !ok {
			continue
		}
		raw := data[m.valStart:m.valEnd]
		if raw[0] != '{' {
			return nil, &Error{Kind: KindMalformed, Path: path, Msg: fmt.Sprintf("entry %s is not a JSON object", m.key)}
		}
		var ej entryJSON
		if err := json.Unmarshal(raw, &ej); err != nil {
			return nil, &Error{Kind: KindMalformed, Path: path, Msg: fmt.Sprintf("entry %s", m.key), Err: describeJSONError(err)}
		}
		e := Entry{Key: m.key, Zone: zone, UserID: id}
		if ej.User != nil {
			if ej.User.ID != nil && *ej.User.ID != "" {
				e.UserID = *ej.User.ID
			}
			if ej.User.Email != nil {
				e.Email = *ej.User.Email
			}
		}
		e.AccessToken = deref(ej.OAuthAccessToken)
		e.IDToken = deref(ej.OAuthIDToken)
		e.RefreshToken = deref(ej.OAuthRefreshToken)
		e.ExpiresAtRaw = deref(ej.OAuthExpiresAt)
		if e.ExpiresAtRaw != "" {
			if t, err := inputs.ParseTime(e.ExpiresAtRaw); err == nil {
				e.ExpiresAt = t
			}
		}
		f.Entries = append(f.Entries, e)
	}
	return f, nil
}

// describeJSONError keeps a type error's field and types but never the
// offending value (it could be a token).
func describeJSONError(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Errorf("field %s is a JSON %s, want %s", te.Field, te.Value, te.Type)
	}
	return errors.New("invalid JSON")
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// parseKey recognizes "User-<id>" (zone us) and "User[<zone>]-<id>".
func parseKey(key string) (zone, id string, ok bool) {
	if rest, found := strings.CutPrefix(key, "User-"); found {
		if rest == "" {
			return "", "", false
		}
		return "us", rest, true
	}
	rest, found := strings.CutPrefix(key, "User[")
	if !found {
		return "", "", false
	}
	zone, id, found = strings.Cut(rest, "]-")
	if !found || zone == "" || id == "" {
		return "", "", false
	}
	return strings.ToLower(zone), id, true
}

// Select picks the session to push: the entries of zone (any zone when
// empty), the placeholder user only when no real user is stored, then the
// one with a refresh token that expires last. It refuses an entry without a
// refresh token or whose refresh window is over.
func (f *File) Select(zone string, now time.Time) (*Entry, error) {
	zone = strings.ToLower(strings.TrimSpace(zone))
	var cands []Entry
	zones := map[string]bool{}
	for _, e := range f.Entries {
		zones[e.Zone] = true
		if zone == "" || e.Zone == zone {
			cands = append(cands, e)
		}
	}
	if len(cands) == 0 {
		msg := "no signed-in user"
		if zone != "" && len(zones) > 0 {
			msg = fmt.Sprintf("no signed-in user for zone %s (the file has zone %s)", zone, joinKeys(zones))
		}
		return nil, &Error{Kind: KindNoEntry, Path: f.Path, Msg: msg}
	}
	var real []Entry
	for _, e := range cands {
		if !e.Pending() {
			real = append(real, e)
		}
	}
	if len(real) > 0 {
		cands = real
	}
	candZones := map[string]bool{}
	for _, e := range cands {
		candZones[e.Zone] = true
	}
	if len(candZones) > 1 {
		return nil, &Error{Kind: KindAmbiguous, Path: f.Path, Msg: fmt.Sprintf("sessions for zones %s: choose one with --zone", joinKeys(candZones))}
	}
	// Latest expiry first; file order breaks ties.
	sort.SliceStable(cands, func(i, j int) bool { return cands[i].ExpiresAt.After(cands[j].ExpiresAt) })
	var pick *Entry
	for i := range cands {
		if cands[i].RefreshToken != "" {
			pick = &cands[i]
			break
		}
	}
	if pick == nil {
		e := cands[0]
		return nil, &Error{Kind: KindNoRefreshToken, Path: f.Path, Msg: fmt.Sprintf("the session of %s has no refresh token (already handed off to CI, or signed out)", e.Describe())}
	}
	switch {
	case pick.ExpiresAtRaw == "":
		return nil, &Error{Kind: KindMalformed, Path: f.Path, Msg: fmt.Sprintf("the session of %s has no OAuthExpiresAt", pick.Describe())}
	case pick.ExpiresAt.IsZero():
		return nil, &Error{Kind: KindMalformed, Path: f.Path, Msg: fmt.Sprintf("the session of %s has an OAuthExpiresAt that is not an ISO 8601 time", pick.Describe())}
	case pick.AccessToken == "":
		return nil, &Error{Kind: KindMalformed, Path: f.Path, Msg: fmt.Sprintf("the session of %s has no OAuthAccessToken", pick.Describe())}
	case !now.Before(pick.RefreshUntil()):
		return nil, &Error{Kind: KindExpired, Path: f.Path, Msg: fmt.Sprintf("the refresh window of %s ended at %s (access token expired %s, plus %d days)", pick.Describe(), pick.RefreshUntil().UTC().Format(time.RFC3339), pick.ExpiresAt.UTC().Format(time.RFC3339), int(RefreshWindow/(24*time.Hour)))}
	}
	if err := checkToken(pick.RefreshToken); err != nil {
		return nil, &Error{Kind: KindMalformed, Path: f.Path, Msg: fmt.Sprintf("the refresh token of %s %v", pick.Describe(), err)}
	}
	if err := checkToken(pick.AccessToken); err != nil {
		return nil, &Error{Kind: KindMalformed, Path: f.Path, Msg: fmt.Sprintf("the access token of %s %v", pick.Describe(), err)}
	}
	out := *pick
	return &out, nil
}

// checkToken applies the limits of a secret value, without quoting it.
func checkToken(v string) error {
	switch {
	case len(v) > inputs.MaxSecretBytes:
		return fmt.Errorf("is longer than %d bytes", inputs.MaxSecretBytes)
	case strings.ContainsFunc(v, func(r rune) bool { return r <= ' ' || r == 0x7f }):
		return errors.New("contains whitespace or control characters")
	}
	return nil
}

func joinKeys(m map[string]bool) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return strings.Join(keys, " and ")
}

// object is a scanned JSON object: its members with their byte spans.
type object struct {
	openEnd    int // just after '{'
	closeStart int // at '}'
	members    []member
}

type member struct {
	key              string
	keyStart         int // at the key's opening quote
	valStart, valEnd int // the value
}

// scanObject scans data, which must hold exactly one JSON object, and
// returns the spans of its members. Duplicate keys are refused.
func scanObject(data []byte) (*object, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	tok, err := dec.Token()
	if err != nil {
		return nil, errors.New("invalid JSON")
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, errors.New("not a JSON object")
	}
	o := &object{openEnd: int(dec.InputOffset())}
	seen := map[string]bool{}
	for dec.More() {
		keyStart := int(dec.InputOffset())
		if len(o.members) > 0 {
			// More stopped at the comma: the key follows it.
			keyStart = skipSpace(data, keyStart+1)
		}
		tok, err := dec.Token()
		if err != nil {
			return nil, errors.New("invalid JSON")
		}
		key, _ := tok.(string)
		if seen[key] {
			return nil, fmt.Errorf("duplicate key %q", key)
		}
		seen[key] = true
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, errors.New("invalid JSON")
		}
		end := int(dec.InputOffset())
		o.members = append(o.members, member{key: key, keyStart: keyStart, valStart: end - len(raw), valEnd: end})
	}
	o.closeStart = int(dec.InputOffset())
	if _, err := dec.Token(); err != nil {
		return nil, errors.New("invalid JSON")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("unexpected data after the JSON object")
	}
	return o, nil
}

func skipSpace(data []byte, i int) int {
	for i < len(data) && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r') {
		i++
	}
	return i
}
