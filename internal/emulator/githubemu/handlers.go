package githubemu

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"golang.org/x/crypto/nacl/box"
)

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// base64Pattern is the check GitHub applies to encrypted_value, quoted in its
// 422 answer to a value that is not standard padded base64
// (integrations/terraform-provider-github#869).
var base64Pattern = regexp.MustCompile(`^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=|[A-Za-z0-9+/]{4})$`)

// improperlyEncrypted is GitHub's 422 message for a value it cannot open:
// garbage ciphertext, or a value sealed for another key (for example the
// repository key used for an environment secret). Reported verbatim from the
// live API in rollthecloudinc/hedge#256 and
// integrations/terraform-provider-github#2315. GitHub does not document its
// answer to a stale key_id; it is treated the same way, since a stale key_id
// means the value was sealed for a key GitHub no longer holds for the scope.
const improperlyEncrypted = "Bad request - validation failed due to an improperly encrypted secret"

// handle answers a request that no fault short-circuited.
func (e *Emulator) handle(c *call, rate rateState) response {
	if c.route == RouteUnknown {
		return c.notFound()
	}
	defer e.lock()()
	perms, known := e.tokens[c.token]
	switch {
	case c.token == "":
		// GitHub's answer to a request without credentials on an endpoint that needs them.
		return c.fail(http.StatusUnauthorized, "Requires authentication")
	case !known:
		return response{status: http.StatusUnauthorized, body: badCredentials()}
	case rate.exceeded:
		// Past the limit: GitHub's 403 with x-ratelimit-remaining 0, which the
		// usual rate headers already carry.
		return response{status: http.StatusForbidden, body: primaryLimitBody()}
	}

	switch c.route {
	case RouteGetOrgPublicKey, RouteGetOrgSecret, RoutePutOrgSecret, RouteListOrgSecretRepos:
		return e.handleOrg(c, perms)
	}
	r, rp, resp, ok := e.repoFor(c, perms)
	if !ok {
		return resp
	}
	switch c.route {
	case RouteGetRepo:
		return e.getRepo(c, r)
	case RouteGetRun:
		return e.getRun(c, r, rp)
	case RouteGetRepoPublicKey, RouteGetRepoSecret, RoutePutRepoSecret:
		return e.handleSecret(c, r.store, nil, rp.SecretsRead || rp.SecretsWrite, rp.SecretsWrite, "secrets")
	case RouteCreateRepoVariable, RouteGetRepoVariable, RouteUpdateRepoVariable:
		return e.handleVariable(c, r.store, rp.VariablesRead || rp.VariablesWrite, rp.VariablesWrite, "variables")
	}
	// Environment routes: GitHub's docs list the "Environments" repository
	// permission for environment secrets and variables.
	env := r.envs[strings.ToLower(c.env)]
	if env == nil {
		return c.notFound()
	}
	read, write := rp.EnvironmentsRead || rp.EnvironmentsWrite, rp.EnvironmentsWrite
	switch c.route {
	case RouteGetEnvPublicKey, RouteGetEnvSecret, RoutePutEnvSecret:
		return e.handleSecret(c, env, nil, read, write, "environments")
	default:
		return e.handleVariable(c, env, read, write, "environments")
	}
}

// repoFor finds the repository addressed by c. A repository that does not
// exist and one the token cannot see both answer 404, as on GitHub.
func (e *Emulator) repoFor(c *call, p Permissions) (*repoState, RepoPermissions, response, bool) {
	var r *repoState
	if c.repoID != "" {
		id, _ := strconv.ParseInt(c.repoID, 10, 64)
		for _, x := range e.repos {
			if x.id == id {
				r = x
			}
		}
	} else {
		r = e.repos[strings.ToLower(c.owner+"/"+c.repo)]
	}
	if r == nil || !lookup(p.Repos, r.fullName).visible() {
		return nil, RepoPermissions{}, c.notFound(), false
	}
	return r, lookup(p.Repos, r.fullName), response{}, true
}

func (e *Emulator) getRepo(c *call, r *repoState) response {
	owner, name, _ := strings.Cut(r.fullName, "/")
	ownerType := "User"
	if e.orgs[strings.ToLower(owner)] != nil {
		ownerType = "Organization"
	}
	return jsonResponse(http.StatusOK, map[string]any{
		"id": r.id, "node_id": fmt.Sprintf("R_emu%d", r.id), "name": name, "full_name": r.fullName,
		"private": true, "visibility": "private", "default_branch": "main",
		"owner":    map[string]any{"login": owner, "type": ownerType},
		"html_url": "https://github.com/" + r.fullName, "url": c.baseURL + "/repos/" + r.fullName,
	})
}

// getRun answers GET /repos/{o}/{r}/actions/runs/{id}: 403 when the token can
// see the repository but lacks "Actions" (read), 404 for an unknown run.
func (e *Emulator) getRun(c *call, r *repoState, rp RepoPermissions) response {
	if !rp.ActionsRead {
		return c.forbidden("actions=read")
	}
	id, err := strconv.ParseInt(c.runID, 10, 64)
	started, ok := r.runs[id]
	if err != nil || !ok {
		return c.notFound()
	}
	_, name, _ := strings.Cut(r.fullName, "/")
	return jsonResponse(http.StatusOK, map[string]any{
		"id": id, "name": "wizard-oauth-refresh", "run_number": 1, "run_attempt": 1, "event": "schedule",
		"status": "in_progress", "conclusion": nil,
		"created_at": ts(started), "updated_at": ts(started), "run_started_at": ts(started),
		"html_url":   fmt.Sprintf("https://github.com/%s/actions/runs/%d", r.fullName, id),
		"url":        fmt.Sprintf("%s/repos/%s/actions/runs/%d", c.baseURL, r.fullName, id),
		"repository": map[string]any{"id": r.id, "name": name, "full_name": r.fullName},
	})
}

// handleOrg serves the organization secret routes. An unknown organization
// is 404; a known one the token holds no "Secrets" permission on is 403.
func (e *Emulator) handleOrg(c *call, p Permissions) response {
	o := e.orgs[strings.ToLower(c.org)]
	if o == nil {
		return c.notFound()
	}
	op := lookup(p.Orgs, o.login)
	if c.route == RouteListOrgSecretRepos {
		return e.listSelectedRepos(c, o, op.SecretsRead || op.SecretsWrite)
	}
	return e.handleSecret(c, o.store, o, op.SecretsRead || op.SecretsWrite, op.SecretsWrite, "organization_secrets")
}

// handleSecret serves public key, get and put for one scope's store; org is
// set for organization scope.
func (e *Emulator) handleSecret(c *call, st *store, org *orgState, read, write bool, perm string) response {
	switch {
	case c.method == http.MethodGet && !read:
		return c.forbidden(perm + "=read")
	case c.method == http.MethodPut && !write:
		return c.forbidden(perm + "=write")
	}
	switch c.route {
	case RouteGetRepoPublicKey, RouteGetEnvPublicKey, RouteGetOrgPublicKey:
		return jsonResponse(http.StatusOK, st.publicKey())
	case RouteGetRepoSecret, RouteGetEnvSecret, RouteGetOrgSecret:
		s := st.secrets[strings.ToUpper(c.name)]
		if s == nil {
			return c.notFound()
		}
		out := map[string]any{"name": s.Name, "created_at": ts(s.CreatedAt), "updated_at": ts(s.UpdatedAt)}
		if org != nil {
			out["visibility"] = s.Visibility
			if s.Visibility == "selected" {
				out["selected_repositories_url"] = fmt.Sprintf("%s/orgs/%s/actions/secrets/%s/repositories", c.baseURL, org.login, s.Name)
			}
		}
		return jsonResponse(http.StatusOK, out)
	default:
		return e.putSecret(c, st, org)
	}
}

// putSecret creates (201, body {}) or updates (204) a secret. The value must
// be standard base64 of a libsodium sealed box opened by the scope's current
// key, and key_id must be the scope's current key id.
func (e *Emulator) putSecret(c *call, st *store, org *orgState) response {
	var in struct {
		EncryptedValue *string  `json:"encrypted_value"`
		KeyID          *string  `json:"key_id"`
		Visibility     *string  `json:"visibility"`
		SelectedIDs    *[]int64 `json:"selected_repository_ids"`
	}
	if resp, ok := c.decode(&in); !ok {
		return resp
	}
	if msg := badName(c.name, "Secret"); msg != "" {
		return c.fail(http.StatusUnprocessableEntity, msg)
	}
	// key_id is required although the schema once marked it optional
	// (github/rest-api-description#419, octokit/request.js#403).
	switch {
	case in.KeyID == nil:
		return c.missing("key_id")
	case in.EncryptedValue == nil:
		return c.missing("encrypted_value")
	case !base64Pattern.MatchString(*in.EncryptedValue):
		return c.fail(http.StatusUnprocessableEntity, fmt.Sprintf("Invalid request.\n\n%s does not match /%s/.",
			truncate(*in.EncryptedValue, 64), strings.ReplaceAll(base64Pattern.String(), "/", `\/`)))
	}
	var selected []int64
	if org != nil {
		// visibility is required for organization secrets (docs: "Create or
		// update an organization secret" lists it as required, on update too).
		switch {
		case in.Visibility == nil:
			return c.missing("visibility")
		case *in.Visibility != "all" && *in.Visibility != "private" && *in.Visibility != "selected":
			return c.fail(http.StatusUnprocessableEntity, fmt.Sprintf(
				"Invalid request.\n\nFor 'properties/visibility', %q is not one of [\"all\", \"private\", \"selected\"].", *in.Visibility))
		case in.SelectedIDs != nil && len(*in.SelectedIDs) > 0 && *in.Visibility != "selected":
			// Docs: "You can only provide a list of repository IDs when the
			// visibility is set to selected." Status inferred; wording is the emulator's.
			return c.fail(http.StatusUnprocessableEntity, "Invalid request.\n\nselected_repository_ids can only be provided when visibility is 'selected'.")
		}
		if *in.Visibility == "selected" {
			// Omitting selected_repository_ids on an update clears the list:
			// GitHub "treats an update that omits selected_repository_ids as
			// clear all repositories" (external-secrets/external-secrets#6514,
			// fixed by re-sending the ids in #6519).
			selected = []int64{}
			if in.SelectedIDs != nil {
				for _, id := range *in.SelectedIDs {
					if org.repos[id] == nil {
						return c.fail(http.StatusUnprocessableEntity, fmt.Sprintf("Invalid request.\n\nRepository %d is not in organization %s.", id, org.login))
					}
				}
				selected = append(selected, *in.SelectedIDs...)
			}
		}
	}
	if *in.KeyID != st.publicKey().KeyID {
		return c.fail(http.StatusUnprocessableEntity, improperlyEncrypted)
	}
	sealed, _ := base64.StdEncoding.DecodeString(*in.EncryptedValue)
	plain, ok := box.OpenAnonymous(nil, sealed, &st.key.pub, &st.key.priv)
	if !ok {
		return c.fail(http.StatusUnprocessableEntity, improperlyEncrypted)
	}
	if len(plain) > MaxValueBytes {
		// Limit documented ("Secrets are limited to 48 KB in size"); the
		// status and wording of the rejection are the emulator's.
		return c.fail(http.StatusUnprocessableEntity, "Invalid request.\n\nSecret value is too large: secrets are limited to 48 KB in size.")
	}
	now := e.now()
	name := strings.ToUpper(c.name)
	s, existed := st.secrets[name]
	if !existed {
		s = &Secret{Name: name, CreatedAt: now}
		st.secrets[name] = s
	}
	s.Value, s.UpdatedAt = string(plain), now
	if org != nil {
		s.Visibility, s.SelectedRepositoryIDs = *in.Visibility, selected
	}
	if existed {
		return response{status: http.StatusNoContent}
	}
	return jsonResponse(http.StatusCreated, struct{}{})
}

// listSelectedRepos answers GET /orgs/{org}/actions/secrets/{name}/repositories.
// For a secret whose visibility is not "selected" it answers 409, as GitHub
// documents for the sibling set/add/remove endpoints ("Response when the
// visibility of the secret is not set to selected"); wording is the emulator's.
func (e *Emulator) listSelectedRepos(c *call, o *orgState, read bool) response {
	if !read {
		return c.forbidden("organization_secrets=read")
	}
	s := o.store.secrets[strings.ToUpper(c.name)]
	if s == nil {
		return c.notFound()
	}
	if s.Visibility != "selected" {
		return c.fail(http.StatusConflict, "The visibility of this secret is not set to 'selected'.")
	}
	repos := []map[string]any{}
	for _, id := range s.SelectedRepositoryIDs {
		if r := o.repos[id]; r != nil {
			owner, name, _ := strings.Cut(r.fullName, "/")
			repos = append(repos, map[string]any{"id": r.id, "name": name, "full_name": r.fullName,
				"private": true, "owner": map[string]any{"login": owner}})
		}
	}
	return jsonResponse(http.StatusOK, map[string]any{"total_count": len(repos), "repositories": repos})
}

// handleVariable serves create (201), get (200) and update (204) of a
// variable. Creating one that exists is 409 "Already exists - Variable
// already exists", which clients rely on to fall back to an update (gh CLI,
// cli/cli#6928); getting or updating a missing one is 404. PATCH may rename.
func (e *Emulator) handleVariable(c *call, st *store, read, write bool, perm string) response {
	if c.method == http.MethodGet && !read {
		return c.forbidden(perm + "=read")
	} else if c.method != http.MethodGet && !write {
		return c.forbidden(perm + "=write")
	}
	key, v := strings.ToUpper(c.name), st.vars[strings.ToUpper(c.name)]
	if c.method == http.MethodGet {
		if v == nil {
			return c.notFound()
		}
		return jsonResponse(http.StatusOK, map[string]any{"name": v.Name, "value": v.Value,
			"created_at": ts(v.CreatedAt), "updated_at": ts(v.UpdatedAt)})
	}
	var in struct{ Name, Value *string }
	if c.method == http.MethodPatch && v == nil {
		return c.notFound()
	} else if resp, ok := c.decode(&in); !ok {
		return resp
	}
	if c.method == http.MethodPost {
		if in.Name == nil {
			return c.missing("name")
		} else if in.Value == nil {
			return c.missing("value")
		}
		key, v = "", &Secret{CreatedAt: e.now()}
	}
	name, value := v.Name, v.Value
	if in.Name != nil {
		name = *in.Name
	}
	if in.Value != nil {
		value = *in.Value
	}
	if msg := badName(name, "Variable"); msg != "" {
		return c.fail(http.StatusUnprocessableEntity, msg)
	} else if len(value) > MaxValueBytes {
		return c.fail(http.StatusUnprocessableEntity, "Invalid request.\n\nVariable value is too large: variables are limited to 48 KB in size.")
	}
	newKey := strings.ToUpper(name)
	if newKey != key && st.vars[newKey] != nil {
		return c.fail(http.StatusConflict, "Already exists - Variable already exists")
	}
	delete(st.vars, key)
	v.Name, v.Value, v.UpdatedAt = newKey, value, e.now()
	st.vars[newKey] = v
	if c.method == http.MethodPost {
		return jsonResponse(http.StatusCreated, struct{}{})
	}
	return response{status: http.StatusNoContent}
}

// badName checks the documented naming rules for secrets and variables
// (docs.github.com, "Naming your secrets"/"Naming conventions for
// configuration variables"): only [A-Za-z0-9_], not starting with a digit nor
// with GITHUB_ (case-insensitive). The first message is GitHub's, as reported
// from the live API (millylee/anyrouter-check-in#126); the GITHUB_ one is the
// emulator's.
func badName(name, kind string) string {
	valid := name != "" && (name[0] < '0' || name[0] > '9')
	for _, r := range name {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			valid = false
		}
	}
	if !valid {
		return kind + " names can only contain alphanumeric characters ([a-z], [A-Z], [0-9]) or underscores (_). " +
			"Spaces are not allowed. Must start with a letter ([a-z], [A-Z]) or underscores (_)."
	}
	if strings.HasPrefix(strings.ToUpper(name), "GITHUB_") {
		return kind + " names must not start with GITHUB_."
	}
	return ""
}

// missing is GitHub's 422 for an absent required field, as reported from the
// live API: "Invalid request.\n\n\"key_id\" wasn't supplied." (octokit/request.js#403).
func (c *call) missing(field string) response {
	return c.fail(http.StatusUnprocessableEntity, fmt.Sprintf("Invalid request.\n\n%q wasn't supplied.", field))
}

// decode parses the JSON body into v. Malformed JSON is GitHub's 400
// "Problems parsing JSON"; a field of the wrong type is a 422 in the style of
// GitHub's schema validation. An empty body counts as {}.
func (c *call) decode(v any) (response, bool) {
	if len(strings.TrimSpace(string(c.body))) == 0 {
		return response{}, true
	}
	err := json.Unmarshal(c.body, v)
	var te *json.UnmarshalTypeError
	switch {
	case err == nil:
		return response{}, true
	case errors.As(err, &te):
		return c.fail(http.StatusUnprocessableEntity, fmt.Sprintf("Invalid request.\n\nFor 'properties/%s', a %s is not of the expected type %s.",
			te.Field, te.Value, te.Type)), false
	default:
		return c.fail(http.StatusBadRequest, "Problems parsing JSON"), false
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
