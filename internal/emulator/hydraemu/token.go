package hydraemu

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// writeTokenJSON writes like fosite's WriteAccessResponse/writeJsonError:
// json.Marshal (no trailing newline) with no-store caching headers.
func writeTokenJSON(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func writeOAuthError(w http.ResponseWriter, e *OAuthError) {
	if rec, ok := w.(*recorder); ok {
		rec.oauthErr = e.Code
	}
	writeTokenJSON(w, e.Status, e.Body())
}

// parseForm is how fosite reads POST bodies: r.ParseMultipartForm(1 << 20),
// then len(r.PostForm) == 0 is an error, so any non-form body is "empty".
func parseForm(r *http.Request) *OAuthError {
	if err := r.ParseMultipartForm(1 << 20); err != nil && err != http.ErrNotMultipart {
		return errParseBody
	} else if len(r.PostForm) == 0 {
		return ErrEmptyBody
	}
	return nil
}

// handleToken is POST /oauth2/token, following fosite's NewAccessRequest:
// parse the form, require grant_type, authenticate the client, then let the
// grant's handler validate and populate the response.
func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		// Hydra only routes POST here; its router answers other methods itself.
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
		return
	}
	if e := parseForm(r); e != nil {
		writeOAuthError(w, e)
		return
	}
	form := r.PostForm
	grantTypes := strings.Fields(form.Get("grant_type"))
	if len(grantTypes) == 0 {
		writeOAuthError(w, ErrMissingGrantType)
		return
	}
	// Handlers use ExactOne("refresh_token") / ExactOne("authorization_code");
	// if none claims the request, fosite returns a bare ErrInvalidRequest.
	if len(grantTypes) != 1 || (grantTypes[0] != "refresh_token" && grantTypes[0] != "authorization_code") {
		writeOAuthError(w, ErrUnsupportedGrantType)
		return
	}
	client, e := s.authenticateClient(r, form)
	if e != nil {
		writeOAuthError(w, e)
		return
	}
	var tokens Tokens
	if grantTypes[0] == "refresh_token" {
		tokens, e = s.refreshGrant(client, form.Get("refresh_token"), s.issuer(r.Host))
	} else {
		tokens, e = s.codeGrant(client, form, s.issuer(r.Host))
	}
	if e != nil {
		writeOAuthError(w, e)
		return
	}
	body, _ := json.Marshal(tokens)
	writeTokenJSON(w, http.StatusOK, body)
}

// authenticateClient follows fosite's DefaultClientAuthenticationStrategy for
// the methods none, client_secret_basic and client_secret_post.
func (s *Server) authenticateClient(r *http.Request, form url.Values) (Client, *OAuthError) {
	id, secret, basic := r.BasicAuth()
	if basic {
		id, _ = url.QueryUnescape(id)
		secret, _ = url.QueryUnescape(secret)
	} else if id, secret = form.Get("client_id"), form.Get("client_secret"); id == "" {
		return Client{}, ErrMissingClientID
	}
	s.mu.Lock()
	c, ok := s.clients[id]
	s.mu.Unlock()
	if !ok || (!c.Public && subtle.ConstantTimeCompare([]byte(secret), []byte(c.Secret)) != 1) {
		return Client{}, ErrUnknownClient // a wrong secret gives the same body
	}
	return c, nil
}

// refreshGrant is fosite's RefreshTokenGrantHandler on Hydra's persister.
// Validation and rotation are two critical sections because in Hydra
// NewAccessRequest reads outside the transaction that rotates the token.
func (s *Server) refreshGrant(c Client, token, issuer string) (Tokens, *OAuthError) {
	sig, hmacOK := s.splitToken(token)
	s.mu.Lock()
	g, e := s.checkRefreshLocked(c, sig, hmacOK)
	s.mu.Unlock()
	if e != nil {
		return Tokens{}, e
	}
	if s.cfg.afterValidate != nil {
		s.cfg.afterValidate()
	}
	time.Sleep(s.cfg.commitDelay)
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	rec := s.refresh[sig]
	if rec == nil { // revoked meanwhile
		return Tokens{}, ErrRefreshConcurrent
	}
	switch {
	case c.DisableRotation:
		return s.mintLocked(g, now, issuer, false), nil
	case s.cfg.grace > 0:
		// gracefulRefreshRotation: "UPDATE hydra_oauth2_refresh SET active=false,
		// first_used_at = COALESCE(first_used_at, ?) WHERE signature=?", then delete
		// only the access token stored with this refresh token (access_token_signature).
		rec.active = false
		if rec.firstUsed.IsZero() {
			rec.firstUsed = now
		}
		delete(s.access, rec.accessSig) // a no-op on the second use within the grace period
	default:
		// strictRefreshRotation: delete all access tokens of the request, then
		// "UPDATE hydra_oauth2_refresh SET active=false WHERE request_id=? AND active".
		// The presented token was active when validated; if it is inactive now,
		// a concurrent refresh of it committed in between (see ConcurrentRefresh).
		if !rec.active {
			switch s.cfg.concurrent {
			case ConcurrentRefreshInvalidRequest:
				return Tokens{}, ErrRefreshConcurrent
			case ConcurrentRefreshServerError:
				return Tokens{}, ErrServerError
			}
			// ConcurrentRefreshBothSucceed: rotate anyway; this deactivates the
			// pair the earlier commit just issued, so the later commit wins.
		}
		s.deleteAccessLocked(g.id)
		for _, r := range s.refresh {
			if r.grantID == g.id {
				r.active = false
			}
		}
	}
	return s.mintLocked(g, now, issuer, true), nil
}

// checkRefreshLocked is HandleTokenEndpointRequest, in fosite's order.
func (s *Server) checkRefreshLocked(c Client, sig string, hmacOK bool) (*grant, *OAuthError) {
	now := s.now()
	rec := s.refresh[sig]
	switch {
	case rec == nil:
		return nil, ErrRefreshTokenInvalid
	case !s.refreshActiveLocked(rec, now):
		// handleRefreshTokenReuse: DeleteRefreshTokenSession(signature), then
		// RevokeRefreshToken(req.GetID()) and RevokeAccessToken(req.GetID()).
		delete(s.refresh, sig)
		s.revokeGrantLocked(rec.grantID)
		return nil, ErrRefreshTokenReused
	case !hmacOK:
		return nil, ErrRefreshTokenSignature
	case expired(rec.expiresAt, now):
		return nil, ErrRefreshTokenExpired
	}
	g := s.grants[rec.grantID]
	if !hasOffline(g.scopes) {
		return nil, ErrRefreshScopeNotGranted
	} else if g.clientID != c.ID {
		return nil, ErrRefreshClientMismatch
	}
	for _, scope := range g.scopes {
		if !c.allowsScope(scope) {
			return nil, errScopeNotAllowed(scope)
		}
	}
	return g, nil
}

func (s *Server) deleteAccessLocked(grantID string) {
	for sig, a := range s.access {
		if a.grantID == grantID {
			delete(s.access, sig)
		}
	}
}

var verifierWrongFormat = regexp.MustCompile(`[^\w\.\-~]`)

// codeGrant is fosite's AuthorizeExplicitGrantHandler followed by the PKCE
// handler, in that order, then PopulateTokenEndpointResponse.
func (s *Server) codeGrant(c Client, form url.Values, issuer string) (Tokens, *OAuthError) {
	sig, hmacOK := s.splitToken(form.Get("code"))
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	code := s.codes[sig]
	if code == nil {
		return Tokens{}, ErrAuthCodeInvalid
	}
	g := s.grants[code.grantID]
	if code.used {
		// "If an authorize code is used twice, we revoke all refresh and access
		// tokens associated with this request."
		s.revokeGrantLocked(code.grantID)
		return Tokens{}, ErrAuthCodeReused
	}
	if !hmacOK || expired(code.expiresAt, now) {
		return Tokens{}, ErrAuthCodeInvalid
	}
	if g.clientID != c.ID {
		return Tokens{}, ErrAuthCodeClientMismatch
	}
	if code.redirectURI != "" && code.redirectURI != form.Get("redirect_uri") {
		return Tokens{}, ErrAuthCodeRedirectMismatch
	}
	if e := s.checkPKCELocked(c, code, form.Get("code_verifier")); e != nil {
		return Tokens{}, e
	}
	code.used = true // InvalidateAuthorizeCodeSession
	return s.mintLocked(g, now, issuer, true), nil
}

// checkPKCELocked is fosite v0.49.0 pkce.Handler.HandleTokenEndpointRequest.
// The PKCE session is deleted before the verifier is compared.
func (s *Server) checkPKCELocked(c Client, code *codeRec, verifier string) *OAuthError {
	if !code.pkce {
		if verifier == "" {
			return s.pkceMissing(c)
		}
		return ErrPKCESessionMissing
	}
	code.pkce = false
	nv := len(verifier)
	switch {
	case !s.cfg.pkceAll && code.challenge == "" && nv == 0:
		return nil
	case nv < 43:
		return ErrPKCEVerifierTooShort
	case nv > 128:
		return ErrPKCEVerifierTooLong
	case verifierWrongFormat.MatchString(verifier):
		return ErrPKCEVerifierFormat
	case code.challenge == "":
		return errInvalidGrant.withHint("The PKCE code verifier was provided but the code challenge was absent from the authorization request.")
	}
	sum := sha256.Sum256([]byte(verifier))
	if b64.EncodeToString(sum[:]) != code.challenge {
		return ErrPKCEMismatch
	}
	return nil
}

// pkceMissing is fosite's validateNoPKCE.
func (s *Server) pkceMissing(c Client) *OAuthError {
	switch {
	case s.cfg.pkceAll:
		return ErrPKCERequired
	case s.cfg.pkcePublic && c.Public:
		return ErrPKCERequiredPublic
	}
	return nil
}
