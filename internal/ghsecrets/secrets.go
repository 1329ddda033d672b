package ghsecrets

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/google/go-github/v62/github"
	"golang.org/x/crypto/nacl/box"
)

// Target is where secrets are written: a repository, one of its
// environments, or an organization.
type Target struct {
	// Owner and Repo name the repository (also for an environment).
	Owner, Repo string
	// Environment, when set, targets that environment's secrets.
	Environment string
	// Org, when set, targets organization secrets.
	Org string
	// Visibility is used when an organization secret is created
	// ("private", "all" or "selected"). An existing secret keeps its own.
	Visibility string
	// SelectedRepositoryIDs is used when an organization secret is created
	// with visibility "selected".
	SelectedRepositoryIDs []int64
}

// String names the target for messages.
func (t Target) String() string {
	switch {
	case t.Org != "":
		return "organization " + t.Org
	case t.Environment != "":
		return fmt.Sprintf("environment %q of %s/%s", t.Environment, t.Owner, t.Repo)
	default:
		return "repository " + t.Owner + "/" + t.Repo
	}
}

// secretsPath is the REST path of the target's secrets collection.
// Environment secrets use the owner/repo form of the current API docs
// (go-github v62 only has the repository-id form, which costs an extra
// request to look the id up).
func (t Target) secretsPath() string {
	esc := url.PathEscape
	switch {
	case t.Org != "":
		return "orgs/" + esc(t.Org) + "/actions/secrets"
	case t.Environment != "":
		return "repos/" + esc(t.Owner) + "/" + esc(t.Repo) + "/environments/" + esc(t.Environment) + "/secrets"
	default:
		return "repos/" + esc(t.Owner) + "/" + esc(t.Repo) + "/actions/secrets"
	}
}

// PublicKey is a target's Actions public key.
type PublicKey struct {
	ID  string
	Key [32]byte
}

// SecretMeta is what GitHub tells about an existing secret (never a value).
type SecretMeta struct {
	Name       string
	UpdatedAt  time.Time
	Visibility string
	// SelectedRepositoryIDs is filled by the caller for an organization
	// secret with visibility selected.
	SelectedRepositoryIDs []int64
}

// PublicKey fetches the target's public key. It is the preflight of a run:
// a 401, 403 or 404 here stops the run before the token endpoint is called.
func (c *Client) PublicKey(ctx context.Context, t Target) (PublicKey, error) {
	var pk github.PublicKey
	err := c.call(ctx, "fetch the public key of "+t.String(), func(ctx context.Context) (*github.Response, error) {
		req, err := c.gh.NewRequest(http.MethodGet, t.secretsPath()+"/public-key", nil)
		if err != nil {
			return nil, err
		}
		return c.gh.Do(ctx, req, &pk)
	})
	if err != nil {
		return PublicKey{}, err
	}
	return decodeKey(pk.GetKeyID(), pk.GetKey())
}

func decodeKey(id, b64 string) (PublicKey, error) {
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(raw) != 32 || id == "" {
		why := fmt.Sprintf("%d bytes", len(raw))
		if err != nil {
			why = "not base64"
		}
		if id == "" {
			why = "no key_id"
		}
		return PublicKey{}, &Error{Op: "use the public key", Kind: KindBadKey, Message: "GitHub answered an unusable public key (" + why + ", want 32 bytes with a key_id)"}
	}
	var k PublicKey
	k.ID = id
	copy(k.Key[:], raw)
	return k, nil
}

// Secret fetches an existing secret's metadata. It returns (nil, nil) when
// the secret does not exist.
func (c *Client) Secret(ctx context.Context, t Target, name string) (*SecretMeta, error) {
	var s github.Secret
	err := c.call(ctx, "read secret "+name, func(ctx context.Context) (*github.Response, error) {
		req, err := c.gh.NewRequest(http.MethodGet, t.secretsPath()+"/"+url.PathEscape(name), nil)
		if err != nil {
			return nil, err
		}
		return c.gh.Do(ctx, req, &s)
	})
	if KindOf(err) == KindNotFound {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &SecretMeta{Name: s.Name, UpdatedAt: s.UpdatedAt.Time, Visibility: s.Visibility}, nil
}

// Seal encrypts value for the key (libsodium crypto_box_seal) and returns it
// base64-encoded, as the API wants it.
func (c *Client) Seal(k PublicKey, value string) (string, error) {
	return Seal(c.opts.Rand, k, value)
}

// Seal encrypts value for the key with randomness from r (nil: crypto/rand).
func Seal(r interface{ Read([]byte) (int, error) }, k PublicKey, value string) (string, error) {
	if r == nil {
		r = rand.Reader
	}
	out, err := box.SealAnonymous(nil, []byte(value), &k.Key, r)
	if err != nil {
		return "", fmt.Errorf("failed to seal secret: %w", err)
	}
	return base64.StdEncoding.EncodeToString(out), nil
}

// Value is one secret to write.
type Value struct {
	Name  string
	Value string
	// Visibility and SelectedRepositoryIDs are only used for an
	// organization secret that already exists: its current access, kept as
	// it is.
	Visibility            string
	SelectedRepositoryIDs []int64
}

// Sealed is a secret value sealed for a key.
type Sealed struct {
	Name           string `json:"name"`
	EncryptedValue string `json:"encrypted_value"`
	// Visibility and SelectedRepositoryIDs carry an existing organization
	// secret's access as it is: GitHub clears the selected repositories of
	// a secret updated without them.
	Visibility            string  `json:"visibility,omitempty"`
	SelectedRepositoryIDs []int64 `json:"selected_repository_ids,omitempty"`
}

// Result is the outcome of one write.
type Result struct {
	Name string
	// Sealed is the ciphertext last sent (or ready to send), for a
	// recovery record when the write failed.
	Sealed Sealed
	// KeyID is the key Sealed was made for.
	KeyID string
	Err   error
	// Attempts counts the PUTs made for this secret.
	Attempts int
	// Refetched is true when the key was fetched again after a 422.
	Refetched bool
	Duration  time.Duration
}

// WriteAll seals every value with key and writes them concurrently. Every
// write is attempted whatever happens to the others. When GitHub answers
// 422 (the key may have rotated since the preflight), the key is fetched
// again once, shared by all writes, and the value resealed and sent again.
func (c *Client) WriteAll(ctx context.Context, t Target, key PublicKey, values []Value) []Result {
	results := make([]Result, len(values))
	refetch := &keyRefetch{c: c, t: t}
	var wg sync.WaitGroup
	for i, v := range values {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := c.opts.Now()
			results[i] = c.write(ctx, t, key, v, refetch)
			results[i].Duration = c.opts.Now().Sub(start)
		}()
	}
	wg.Wait()
	return results
}

func (c *Client) write(ctx context.Context, t Target, key PublicKey, v Value, refetch *keyRefetch) Result {
	r := Result{Name: v.Name}
	for try := 0; ; try++ {
		enc, err := c.Seal(key, v.Value)
		if err != nil {
			r.Err = err
			return r
		}
		r.Sealed = Sealed{Name: v.Name, EncryptedValue: enc, Visibility: v.Visibility, SelectedRepositoryIDs: v.SelectedRepositoryIDs}
		r.KeyID = key.ID
		r.Attempts++
		r.Err = c.PutSealed(ctx, t, key.ID, r.Sealed)
		if try > 0 || KindOf(r.Err) != KindInvalid {
			return r
		}
		// 422: perhaps the key rotated since the preflight.
		fresh, err := refetch.get(ctx)
		if err != nil || fresh.ID == key.ID {
			return r
		}
		r.Refetched = true
		key = fresh
	}
}

// PutSealed writes one already-sealed value (also how a recovery record is
// restored).
func (c *Client) PutSealed(ctx context.Context, t Target, keyID string, s Sealed) error {
	body := &github.EncryptedSecret{KeyID: keyID, EncryptedValue: s.EncryptedValue}
	if t.Org != "" {
		body.Visibility, body.SelectedRepositoryIDs = s.Visibility, s.SelectedRepositoryIDs
		if body.Visibility == "" {
			body.Visibility, body.SelectedRepositoryIDs = t.Visibility, t.SelectedRepositoryIDs
		}
		if body.Visibility != "selected" {
			body.SelectedRepositoryIDs = nil
		}
	}
	return c.call(ctx, "write secret "+s.Name, func(ctx context.Context) (*github.Response, error) {
		req, err := c.gh.NewRequest(http.MethodPut, t.secretsPath()+"/"+url.PathEscape(s.Name), body)
		if err != nil {
			return nil, err
		}
		return c.gh.Do(ctx, req, nil)
	})
}

// keyRefetch fetches the public key again at most once for all writes.
type keyRefetch struct {
	c    *Client
	t    Target
	once sync.Once
	key  PublicKey
	err  error
}

func (k *keyRefetch) get(ctx context.Context) (PublicKey, error) {
	k.once.Do(func() { k.key, k.err = k.c.PublicKey(ctx, k.t) })
	return k.key, k.err
}

// ErrKeyChanged means a recovery record was sealed for a key the target no
// longer has: GitHub cannot open it any more.
var ErrKeyChanged = errors.New("the public key changed since the record was sealed")

// RunStartedAt reads when a workflow run started (for the stale-secret
// guard). It needs Actions: read on the repository.
func (c *Client) RunStartedAt(ctx context.Context, owner, repo string, runID int64) (time.Time, error) {
	var run github.WorkflowRun
	err := c.call(ctx, fmt.Sprintf("read workflow run %d", runID), func(ctx context.Context) (*github.Response, error) {
		req, err := c.gh.NewRequest(http.MethodGet, fmt.Sprintf("repos/%s/%s/actions/runs/%d", url.PathEscape(owner), url.PathEscape(repo), runID), nil)
		if err != nil {
			return nil, err
		}
		return c.gh.Do(ctx, req, &run)
	})
	if err != nil {
		return time.Time{}, err
	}
	return run.GetRunStartedAt().Time, nil
}

// RepoID looks up a repository's numeric id (for organization secrets with
// visibility selected).
func (c *Client) RepoID(ctx context.Context, owner, repo string) (int64, error) {
	var r github.Repository
	err := c.call(ctx, "look up repository "+owner+"/"+repo, func(ctx context.Context) (*github.Response, error) {
		req, err := c.gh.NewRequest(http.MethodGet, "repos/"+url.PathEscape(owner)+"/"+url.PathEscape(repo), nil)
		if err != nil {
			return nil, err
		}
		return c.gh.Do(ctx, req, &r)
	})
	return r.GetID(), err
}

// SelectedRepositoryIDs lists the repositories that can read an
// organization secret with visibility selected.
func (c *Client) SelectedRepositoryIDs(ctx context.Context, org, name string) ([]int64, error) {
	var out github.SelectedReposList
	err := c.call(ctx, "list the repositories of secret "+name, func(ctx context.Context) (*github.Response, error) {
		req, err := c.gh.NewRequest(http.MethodGet, "orgs/"+url.PathEscape(org)+"/actions/secrets/"+url.PathEscape(name)+"/repositories?per_page=100", nil)
		if err != nil {
			return nil, err
		}
		return c.gh.Do(ctx, req, &out)
	})
	if err != nil {
		return nil, err
	}
	if out.GetTotalCount() > len(out.Repositories) {
		return nil, &Error{Op: "list the repositories of secret " + name, Kind: KindOther, Message: fmt.Sprintf("%d repositories: more than one page; refusing to rewrite the secret and shrink its access", out.GetTotalCount())}
	}
	ids := make([]int64, 0, len(out.Repositories))
	for _, r := range out.Repositories {
		ids = append(ids, r.GetID())
	}
	return ids, nil
}
