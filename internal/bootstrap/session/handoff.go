package session

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
)

// refreshMember is the member the hand-off removes, in the wizard's spelling.
const refreshMember = "OAuthRefreshToken"

// isRefreshMember reports whether Parse reads an entry member named key as
// the refresh token: encoding/json matches member names to struct fields
// case-insensitively (bytes.EqualFold, so also "ſ" for "s" and the Kelvin
// sign for "k"), and the last matching member wins.
func isRefreshMember(key string) bool { return strings.EqualFold(key, refreshMember) }

// FileMode is the mode of a rewritten session file.
const FileMode fs.FileMode = 0o600

// HandOff removes the refresh token from entry key of the file at path, so
// that only CI holds the chain from now on. The file is read again first:
// the entry must still hold refreshToken (the value that was pushed, read
// as Parse reads it: the last member whose name matches OAuthRefreshToken
// case-insensitively). If the wizard has replaced it meanwhile, the pushed
// token has already been used and HandOff returns a KindChanged error
// without writing. Otherwise every member of the entry whose name matches
// OAuthRefreshToken case-insensitively and holds a refresh token (a
// non-empty string) is removed, whatever its spelling; members that hold
// null or "" stay. An entry that no longer holds any refresh token (or is
// gone) needs no hand-off: removed is false.
func HandOff(path, key, refreshToken string) (removed bool, err error) {
	n, err := rewrite(path, func(data []byte, obj *object) ([]byte, int, error) {
		for _, m := range obj.members {
			if m.key != key {
				continue
			}
			if data[m.valStart] != '{' {
				return nil, 0, nil
			}
			out, n, err := removeToken(data, m, refreshToken)
			if errors.Is(err, errOtherToken) {
				return nil, 0, &Error{Kind: KindChanged, Path: path, Msg: fmt.Sprintf("entry %s now holds a different refresh token than the one pushed: the wizard refreshed the session while the bootstrap ran", key)}
			}
			if err != nil {
				return nil, 0, err
			}
			return out, n, nil
		}
		return nil, 0, nil
	})
	return n > 0, err
}

// Forget removes refreshToken from every user entry of the file at path that
// holds exactly that token (the wizard mirrors its session into the legacy
// file), like HandOff: every case variant of OAuthRefreshToken that holds a
// refresh token goes. It returns the keys it changed. A missing file is no
// error.
func Forget(path, refreshToken string) ([]string, error) {
	var keys []string
	_, err := rewrite(path, func(data []byte, obj *object) ([]byte, int, error) {
		// Work from the last entry back so earlier spans stay valid.
		out := data
		total := 0
		for i := len(obj.members) - 1; i >= 0; i-- {
			m := obj.members[i]
			if _, _, ok := parseKey(m.key); !ok || out[m.valStart] != '{' {
				continue
			}
			next, n, err := removeToken(out, m, refreshToken)
			if errors.Is(err, errOtherToken) || (err == nil && n == 0) {
				continue
			}
			if err != nil {
				return nil, 0, err
			}
			out = next
			total += n
			keys = append([]string{m.key}, keys...)
		}
		if total == 0 {
			return nil, 0, nil
		}
		return out, total, nil
	})
	if KindOf(err) == KindNoFile {
		return nil, nil
	}
	return keys, err
}

var errOtherToken = errors.New("the entry holds another refresh token")

// removeToken removes the refresh token from entry m (an object within
// data) if the entry holds want: the value of its last member named
// OAuthRefreshToken in any case, as Parse reads it. Then every such member
// that holds a non-empty string goes, and n counts them. n is 0 when the
// entry holds no refresh token; errOtherToken means it holds another one.
func removeToken(data []byte, m member, want string) (out []byte, n int, err error) {
	entry := data[m.valStart:m.valEnd]
	obj, err := scanObject(entry)
	if err != nil {
		return nil, 0, fmt.Errorf("entry %s: %w", m.key, err)
	}
	var held *string // what Parse reads: the last match wins, null included
	var cut []int    // the matching members that hold a token, in order
	for i, f := range obj.members {
		if !isRefreshMember(f.key) {
			continue
		}
		var got *string
		if err := json.Unmarshal(entry[f.valStart:f.valEnd], &got); err != nil {
			return nil, 0, fmt.Errorf("entry %s: %s is not a string", m.key, f.key)
		}
		held = got
		if got != nil && *got != "" {
			cut = append(cut, i)
		}
	}
	if held == nil || *held == "" {
		return nil, 0, nil
	}
	if subtle.ConstantTimeCompare([]byte(*held), []byte(want)) != 1 {
		return nil, 0, errOtherToken
	}
	return cutMembers(data, m.valStart, obj, cut), len(cut), nil
}

// cutMembers returns data without the members cut (ascending indexes) of
// obj, an object scanned from data[base:]. Every other byte stays: a member
// goes with the comma before it, or, when no member before it is kept, with
// everything up to the next kept member's key; when no member is kept the
// object becomes "{}" (whatever was between the braces goes).
func cutMembers(data []byte, base int, obj *object, cut []int) []byte {
	type span struct{ from, to int } // relative to base
	var spans []span
	if len(cut) == len(obj.members) {
		spans = append(spans, span{obj.openEnd, obj.closeStart})
	} else {
		lead := 0 // members 0..lead-1 are all cut, member lead is kept
		for lead < len(cut) && cut[lead] == lead {
			lead++
		}
		if lead > 0 {
			spans = append(spans, span{obj.members[0].keyStart, obj.members[lead].keyStart})
		}
		for _, i := range cut[lead:] {
			spans = append(spans, span{obj.members[i-1].valEnd, obj.members[i].valEnd})
		}
	}
	out := make([]byte, 0, len(data))
	prev := 0
	for _, sp := range spans {
		out = append(out, data[prev:base+sp.from]...)
		prev = base + sp.to
	}
	return append(out, data[prev:]...)
}

// rewrite reads path, lets edit change it, checks that the edit removed
// only refresh tokens, and replaces the file atomically. edit returns the
// new content and how many members it removed (0: nothing to write).
func rewrite(path string, edit func(data []byte, obj *object) ([]byte, int, error)) (int, error) {
	// Write through a symlink (dotfile managers) instead of replacing it.
	real, err := filepath.EvalSymlinks(path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, &Error{Kind: KindNoFile, Path: path, Msg: "no such file"}
	}
	if err != nil {
		return 0, &Error{Kind: KindUnreadable, Path: path, Msg: "cannot resolve the session file", Err: unwrapPath(err)}
	}
	data, err := readFile(real)
	if err != nil {
		return 0, err
	}
	obj, err := scanObject(data)
	if err != nil {
		return 0, &Error{Kind: KindMalformed, Path: path, Msg: "not a wizard session file (want a JSON object)", Err: err}
	}
	out, n, err := edit(data, obj)
	if err != nil {
		var se *Error
		if errors.As(err, &se) {
			return 0, err
		}
		return 0, &Error{Kind: KindMalformed, Path: path, Msg: "cannot edit the session file", Err: err}
	}
	if n == 0 {
		return 0, nil
	}
	if err := checkOnlyTokensRemoved(data, out, n); err != nil {
		return 0, &Error{Kind: KindMalformed, Path: path, Msg: "refusing to rewrite the session file", Err: err}
	}
	if err := WriteAtomic(real, out); err != nil {
		return 0, &Error{Kind: KindUnreadable, Path: path, Msg: "cannot rewrite the session file", Err: err}
	}
	return n, nil
}

// checkOnlyTokensRemoved verifies that after equals before with exactly n
// OAuthRefreshToken members (in any case) removed from top-level entries.
func checkOnlyTokensRemoved(before, after []byte, n int) error {
	var b, a map[string]any
	if err := json.Unmarshal(before, &b); err != nil {
		return errors.New("the original does not parse")
	}
	if err := json.Unmarshal(after, &a); err != nil {
		return errors.New("the edited content does not parse")
	}
	removed := 0
	for k, v := range b {
		entry, ok := v.(map[string]any)
		if !ok {
			continue
		}
		after, ok := a[k].(map[string]any)
		if !ok {
			continue
		}
		for name := range entry {
			if _, has := after[name]; !has && isRefreshMember(name) {
				delete(entry, name)
				removed++
			}
		}
	}
	if removed != n || !reflect.DeepEqual(a, b) {
		return errors.New("the edit would change more than the refresh token")
	}
	return nil
}

// WriteAtomic replaces path with data: a temporary file in the same
// directory, mode 0600, synced, then renamed over path.
func WriteAtomic(path string, data []byte) (err error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return unwrapPath(err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := tmp.Chmod(FileMode); err != nil {
		return unwrapPath(err)
	}
	if _, err := tmp.Write(data); err != nil {
		return unwrapPath(err)
	}
	if err := tmp.Sync(); err != nil {
		return unwrapPath(err)
	}
	if err := tmp.Close(); err != nil {
		return unwrapPath(err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	syncDir(dir)
	return nil
}

// syncDir makes the rename durable where the platform allows it.
func syncDir(dir string) {
	d, err := os.Open(dir)
	if err != nil {
		return
	}
	defer d.Close()
	_ = d.Sync()
}
