package hydraemu

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/json"
	"math/big"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// handleIntrospect is POST /admin/oauth2/introspect (Hydra's admin API,
// oauth2/handler.go introspectOAuth2Token). Inactive, unknown, expired and
// revoked tokens all give 200 {"active":false} (fosite WriteIntrospectionError).
func (s *Server) handleIntrospect(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		writeOAuthError(w, errMethodNotPost(r.Method))
		return
	}
	if e := parseForm(r); e != nil {
		writeOAuthError(w, e)
		return
	}
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	info, ok := s.introspect(r.PostForm.Get("token"), strings.Fields(r.PostForm.Get("scope")), s.issuer(r.Host))
	if !ok {
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Pragma", "no-cache")
		_ = json.NewEncoder(w).Encode(struct {
			Active bool `json:"active"`
		}{false})
		return
	}
	_ = json.NewEncoder(w).Encode(info)
}

// Introspection is Hydra's introspection answer (oauth2.Introspection, field order kept).
type Introspection struct {
	Active    bool     `json:"active"`
	Scope     string   `json:"scope,omitempty"`
	ClientID  string   `json:"client_id"`
	Subject   string   `json:"sub"`
	ExpiresAt int64    `json:"exp"`
	IssuedAt  int64    `json:"iat"`
	NotBefore int64    `json:"nbf"`
	Audience  []string `json:"aud"`
	Issuer    string   `json:"iss"`
	TokenType string   `json:"token_type"` // always "Bearer"
	TokenUse  string   `json:"token_use"`  // "access_token" or "refresh_token"
}

// introspect looks the token up as an access token, then as a refresh token,
// like fosite's IntrospectToken without a token_type_hint.
func (s *Server) introspect(token string, scopes []string, issuer string) (Introspection, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	var g *grant
	in := Introspection{Active: true, Audience: []string{}, Issuer: issuer, TokenType: "Bearer"}
	if a := s.lookupAccessLocked(token); a != nil && !expired(a.expiresAt, now) {
		g, in.TokenUse, in.ExpiresAt, in.IssuedAt = s.grants[a.grantID], "access_token", a.expiresAt.Unix(), a.issuedAt.Unix()
	} else if rt := s.lookupRefreshLocked(token); rt != nil && s.refreshActiveLocked(rt, now) && !expired(rt.expiresAt, now) {
		g, in.TokenUse, in.ExpiresAt, in.IssuedAt = s.grants[rt.grantID], "refresh_token", rt.expiresAt.Unix(), rt.issuedAt.Unix()
		if rt.expiresAt.IsZero() { // Hydra: requested_at + lifespan when no expiry is stored
			in.ExpiresAt = rt.issuedAt.Add(s.cfg.refreshTTL).Unix()
		}
	}
	if g == nil {
		return Introspection{}, false
	}
	for _, want := range scopes {
		if !slices.Contains(g.scopes, want) {
			return Introspection{}, false
		}
	}
	in.Scope, in.ClientID, in.Subject, in.NotBefore = strings.Join(g.scopes, " "), g.clientID, g.subject, in.IssuedAt
	return in, true
}

// The ID token key is shared by all servers of a process and generated on
// first use; ID tokens are RS256 JWTs verifiable with PathJWKS.
const idTokenKeyID = "hydraemu"

var idTokenKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic("hydraemu: generating ID token key: " + err.Error())
	}
	return k
})

func jwksJSON() []byte {
	pub := idTokenKey().PublicKey
	b, _ := json.Marshal(map[string]any{"keys": []map[string]string{{
		"alg": "RS256", "kid": idTokenKeyID, "kty": "RSA", "use": "sig",
		"n": b64.EncodeToString(pub.N.Bytes()),
		"e": b64.EncodeToString(big.NewInt(int64(pub.E)).Bytes()),
	}}})
	return b
}

// signIDToken builds an ID token with the claims Hydra puts in one
// (at_hash, aud, auth_time, exp, iat, iss, jti, nonce, rat, sid, sub).
func signIDToken(g *grant, accessToken, issuer string, now time.Time, jti string) string {
	h := sha256.Sum256([]byte(accessToken))
	claims := map[string]any{
		"at_hash": b64.EncodeToString(h[:16]), "aud": []string{g.clientID}, "auth_time": g.authTime.Unix(),
		"exp": now.Add(idTokenTTL).Unix(), "iat": now.Unix(), "iss": issuer, "jti": jti,
		"rat": g.authTime.Unix(), "sid": g.id, "sub": g.subject,
	}
	if g.nonce != "" {
		claims["nonce"] = g.nonce
	}
	header, _ := json.Marshal(map[string]string{"alg": "RS256", "kid": idTokenKeyID, "typ": "JWT"})
	payload, _ := json.Marshal(claims)
	input := b64.EncodeToString(header) + "." + b64.EncodeToString(payload)
	digest := sha256.Sum256([]byte(input))
	sig, err := rsa.SignPKCS1v15(nil, idTokenKey(), crypto.SHA256, digest[:])
	if err != nil {
		panic("hydraemu: signing ID token: " + err.Error())
	}
	return input + "." + b64.EncodeToString(sig)
}
