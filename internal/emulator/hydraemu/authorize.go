package hydraemu

import (
	"fmt"
	"html"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// handleAuthorize is GET/POST /oauth2/auth. The user is taken to be logged in
// and to consent to every requested scope (unless DenyAuthorization(true)), so
// the answer is immediately the final redirect Hydra sends after consent.
//
// Validation order follows fosite's newAuthorizeRequest: client, redirect_uri,
// scope, response_type, state; PKCE is checked by the PKCE handler in
// NewAuthorizeResponse, i.e. after consent.
func (s *Server) handleAuthorize(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	if err := r.ParseMultipartForm(1 << 20); err != nil && err != http.ErrNotMultipart {
		s.forwardError(w, r, errParseBody)
		return
	}
	q := r.Form
	state := q.Get("state")
	s.mu.Lock()
	c, ok := s.clients[q.Get("client_id")]
	deny := s.deny
	s.mu.Unlock()
	if !ok {
		s.forwardError(w, r, ErrAuthorizeUnknownClient)
		return
	}
	scopes := strings.Fields(q.Get("scope"))
	redirect, e := matchRedirectURI(q.Get("redirect_uri"), scopes, c)
	if e != nil {
		s.forwardError(w, r, e)
		return
	}
	// From here on the redirect_uri is valid and errors go to the client.
	fail := func(e *OAuthError) { redirectTo(w, r, redirect, errorValues(e, state)) }
	for _, scope := range scopes {
		if !c.allowsScope(scope) {
			fail(errScopeNotAllowed(scope))
			return
		}
	}
	switch rt := strings.Fields(q.Get("response_type")); {
	case len(rt) == 0:
		fail(ErrMissingResponseType)
		return
	case len(rt) != 1 || rt[0] != "code":
		fail(errResponseTypeNotAllowed(q.Get("response_type")))
		return
	}
	if len(state) < 8 { // fosite MinParameterEntropy
		fail(ErrStateTooShort)
		return
	}
	if deny {
		fail(ErrAccessDenied)
		return
	}
	challenge, method := q.Get("code_challenge"), q.Get("code_challenge_method")
	if e := s.validatePKCE(c, challenge, method); e != nil {
		fail(e)
		return
	}

	s.mu.Lock()
	now := s.now()
	g := &grant{id: s.newID(), clientID: c.ID, subject: s.cfg.subject, nonce: q.Get("nonce"), scopes: scopes, authTime: now}
	s.grants[g.id] = g
	code, sig := s.newToken("ory_ac_")
	s.codes[sig] = &codeRec{
		grantID: g.id, redirectURI: q.Get("redirect_uri"), expiresAt: now.Add(authCodeTTL),
		pkce: challenge != "" || method != "", challenge: challenge,
	}
	s.mu.Unlock()
	// fosite authorize code handler: AddParameter("code"), ("state"), ("scope").
	redirectTo(w, r, redirect, url.Values{"code": {code}, "state": {state}, "scope": {strings.Join(scopes, " ")}})
}

// validatePKCE is fosite's pkce.Handler.validate at the authorization endpoint
// (plain is not enabled in Hydra).
func (s *Server) validatePKCE(c Client, challenge, method string) *OAuthError {
	if challenge == "" {
		return s.pkceMissing(c)
	}
	switch method {
	case "S256":
		return nil
	case "plain", "":
		return ErrPKCEPlain
	}
	return ErrPKCEMethod
}

// matchRedirectURI is fosite's validateAuthorizeRedirectURI and
// MatchRedirectURIWithClientRedirectURIs.
func matchRedirectURI(raw string, scopes []string, c Client) (*url.URL, *OAuthError) {
	if raw == "" && slices.Contains(scopes, "openid") {
		return nil, ErrRedirectURIRequired
	}
	chosen := ""
	if raw == "" && len(c.RedirectURIs) == 1 {
		chosen = c.RedirectURIs[0]
	} else if raw != "" {
		requested, err := url.Parse(raw)
		for _, reg := range c.RedirectURIs {
			if reg == raw || (err == nil && loopbackMatch(requested, reg)) {
				chosen = raw
				break
			}
		}
	}
	if chosen == "" {
		return nil, ErrRedirectURINotRegistered
	}
	u, err := url.Parse(chosen)
	if err != nil || u.Scheme == "" || u.Fragment != "" {
		return nil, errRedirectURIInvalid(chosen)
	}
	return u, nil
}

// loopbackMatch is fosite's isMatchingAsLoopback: "http", a loopback IP
// literal, same host, path and query; the port is ignored.
func loopbackMatch(requested *url.URL, registered string) bool {
	reg, err := url.Parse(registered)
	if err != nil {
		return false
	}
	ip := net.ParseIP(requested.Hostname())
	return requested.Scheme == "http" && ip != nil && ip.IsLoopback() &&
		reg.Hostname() == requested.Hostname() && reg.Path == requested.Path && reg.RawQuery == requested.RawQuery
}

func errorValues(e *OAuthError, state string) url.Values {
	return url.Values{"error": {e.Code}, "error_description": {e.Description}, "state": {state}}
}

// redirectTo merges params into the redirect URI's query and answers 303 See
// Other, like fosite's WriteAuthorizeResponse/WriteAuthorizeError (sendRedirect).
func redirectTo(w http.ResponseWriter, r *http.Request, target *url.URL, params url.Values) {
	u := *target
	q := u.Query()
	for k, v := range params {
		q[k] = v
	}
	u.RawQuery = q.Encode()
	if rec, ok := w.(*recorder); ok {
		rec.oauthErr = params.Get("error")
	}
	w.Header().Set("Location", u.String())
	w.WriteHeader(http.StatusSeeOther)
}

// forwardError is Hydra's handler for errors found while the redirect_uri is
// not yet trusted: a 302 to urls.error (default /oauth2/fallbacks/error) with
// error and error_description in the query.
func (s *Server) forwardError(w http.ResponseWriter, r *http.Request, e *OAuthError) {
	if rec, ok := w.(*recorder); ok {
		rec.oauthErr = e.Code
	}
	target := strings.TrimSuffix(s.issuer(r.Host), "/") + PathErrorPage + "?" +
		url.Values{"error": {e.Code}, "error_description": {e.Description}}.Encode()
	http.Redirect(w, r, target, http.StatusFound)
}

// handleErrorPage stands for Hydra's DefaultErrorHandler: HTML with status 500.
func (s *Server) handleErrorPage(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(http.StatusInternalServerError)
	fmt.Fprintf(w, "<html><head><title>An OAuth 2.0 Error Occurred</title></head><body>"+
		"<h1>The OAuth2 request resulted in an error.</h1><ul><li>Error: %s</li><li>Description: %s</li></ul></body></html>\n",
		html.EscapeString(r.URL.Query().Get("error")), html.EscapeString(r.URL.Query().Get("error_description")))
}
