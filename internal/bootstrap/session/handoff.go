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
)

// refreshMember is the member the hand-off removes.
const refreshMember = "OAuthRefreshToken"

// FileMode is the mode of a rewritten session file.
const FileMode fs.FileMode = 0o600

// HandOff removes the refresh token from entry key of the file at path, so
// that only CI holds the chain from now on. The file is read again first:
// the entry must still hold refreshToken (the value that was pushed). If
// the wizard has replaced it meanwhile, the pushed token has already been
// used and HandOff returns a KindChanged error without writing. An entry
// that no longer holds any refresh token (or is gone) needs no hand-off:
// removed is false.
func HandOff(path, key, refreshToken string) (removed bool, err error) {
	n, err := rewrite(path, func(data []byte, obj *object) ([]byte, int, error) {
		for _, m := range obj.members {
			if m.key != key {
				continue
			}
			if data[m.valStart] != '{' {
				return nil, 0, nil
			}
			out, found, err := removeToken(data, m, refreshToken)
			if errors.Is(err, errOtherToken) {
				return nil, 0, &Error{Kind: KindChanged, Path: path, Msg: fmt.Sprintf("entry %s now holds a different refresh token than the one pushed: the wizard refreshed the session while the bootstrap ran", key)}
			}
			if err != nil || !found {
				return nil, 0, err
			}
			return out, 1, nil
		}
		return nil, 0, nil
	})
	return n > 0, err
}

// Forget removes refreshToken from every user entry of the file at path that
// holds exactly that token (the wizard mirrors its session into the legacy
// file). It returns the keys it changed. A missing file is no error.
func Forget(path, refreshToken string) ([]string, error) {
	var keys []string
	_, err := rewrite(path, func(data []byte, obj *object) ([]byte, int, error) {
		// Work from the last entry back so earlier spans stay valid.
		out := data
		for i := len(obj.members) - 1; i >= 0; i-- {
			m := obj.members[i]
			if _, _, ok := parseKey(m.key); !ok || out[m.valStart] != '{' {
				continue
			}
			next, found, err := removeToken(out, m, refreshToken)
			if errors.Is(err, errOtherToken) || (err == nil && !found) {
				continue
			}
			if err != nil {
				return nil, 0, err
			}
			out = next
			keys = append([]string{m.key}, keys...)
		}
		if len(keys) == 0 {
			return nil, 0, nil
		}
		return out, len(keys), nil
	})
	if KindOf(err) == KindNoFile {
		return nil, nil
	}
	return keys, err
}

var errOtherToken = errors.New("the entry holds another refresh token")

// removeToken removes the OAuthRefreshToken member of entry m (an object
// within data) if it equals want. found is false when the entry has no
// refresh token; errOtherToken means it has another one.
func removeToken(data []byte, m member, want string) (out []byte, found bool, err error) {
	entry := data[m.valStart:m.valEnd]
	obj, err := scanObject(entry)
	if err != nil {
		return nil, false, fmt.Errorf("entry %s: %w", m.key, err)
	}
	for i, f := range obj.members {
		if f.key != refreshMember {
			continue
		}
		raw := entry[f.valStart:f.valEnd]
		var got *string
		if err := json.Unmarshal(raw, &got); err != nil {
			return nil, false, fmt.Errorf("entry %s: %s is not a string", m.key, refreshMember)
		}
		if got == nil || *got == "" {
			return nil, false, nil
		}
		if subtle.ConstantTimeCompare([]byte(*got), []byte(want)) != 1 {
			return nil, false, errOtherToken
		}
		// The span to cut, relative to the entry.
		var from, to int
		switch {
		case len(obj.members) == 1:
			// The only member: leave "{}".
			from, to = obj.openEnd, obj.closeStart
		case i == 0:
			// The first member: cut up to the next key, comma included.
			from, to = f.keyStart, obj.members[1].keyStart
		default:
			// Any other: cut from the end of the previous value, so the
			// comma before this member goes with it.
			from, to = obj.members[i-1].valEnd, f.valEnd
		}
		out = make([]byte, 0, len(data)-(to-from))
		out = append(out, data[:m.valStart+from]...)
		out = append(out, data[m.valStart+to:]...)
		return out, true, nil
	}
	return nil, false, nil
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
// OAuthRefreshToken members removed from top-level entries.
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
		if _, had := entry[refreshMember]; had {
			if _, has := after[refreshMember]; !has {
				delete(entry, refreshMember)
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
