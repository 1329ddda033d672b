// Package oauth is the Ory Hydra side of a run: it exchanges a refresh token
// (or, for the bootstrap's login, an authorization code) at Hydra's token
// endpoint and turns every answer into a Token or a typed error.
//
// The parsing follows golang.org/x/oauth2's internal/token.go: bounded body
// reads, RFC 6749 error fields parsed into a typed error, a 200 that carries
// an "error" field is a failure, and expires_in is accepted as a number or a
// string. x/oauth2 itself is not used for the exchange: its token source
// hides whether the server rotated the refresh token (it copies the old one
// into the new token), and it cannot say how many attempts a request took,
// which is what tells a user whether an earlier attempt consumed the token.
package oauth

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// MaxBodyBytes bounds every response body read from the token endpoint.
const MaxBodyBytes = 1 << 20

// Token is a successful token endpoint answer.
type Token struct {
	AccessToken string
	TokenType   string
	// RefreshToken is empty when the server did not rotate the refresh
	// token: the one presented stays valid.
	RefreshToken string
	IDToken      string
	Scope        string
	// ExpiresIn is the access token's lifetime as the server stated it (0
	// when it did not say).
	ExpiresIn time.Duration
	// Expiry is when the access token expires (zero when unknown).
	Expiry time.Time
	// IDTokenExpiry is the id token's exp claim (zero when absent).
	IDTokenExpiry time.Time
}

// Rotated reports whether the server issued a new refresh token.
func (t *Token) Rotated() bool { return t.RefreshToken != "" }

// Error is an RFC 6749 section 5.2 error answered by the token endpoint.
type Error struct {
	// Status is the HTTP status of the answer.
	Status int
	// Code is the "error" field, e.g. "invalid_grant".
	Code        string
	Description string
	Hint        string
	URI         string
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "token endpoint answered %d %s", e.Status, e.Code)
	if e.Description != "" {
		fmt.Fprintf(&b, ": %s", e.Description)
	}
	if e.Hint != "" && !strings.Contains(e.Description, e.Hint) {
		fmt.Fprintf(&b, " (%s)", e.Hint)
	}
	return b.String()
}

// ResponseError is an answer that is neither a token nor an RFC 6749 error:
// an HTML error page, malformed JSON, a missing access_token, a redirect, a
// body over the size limit.
type ResponseError struct {
	Status      int
	ContentType string
	Reason      string
	// The body is deliberately not kept: an unusable answer may still hold
	// a token that was never parsed, and so never masked.
}

func (e *ResponseError) Error() string {
	msg := fmt.Sprintf("unusable token endpoint answer (HTTP %d", e.Status)
	if e.ContentType != "" {
		msg += ", " + e.ContentType
	}
	msg += "): " + e.Reason
	return msg
}

// tokenJSON is the wire form of a token answer, success or failure.
type tokenJSON struct {
	AccessToken  string      `json:"access_token"`
	TokenType    string      `json:"token_type"`
	RefreshToken string      `json:"refresh_token"`
	IDToken      string      `json:"id_token"`
	Scope        string      `json:"scope"`
	ExpiresIn    expiresIn   `json:"expires_in"`
	ErrorCode    errorString `json:"error"`
	ErrorDesc    string      `json:"error_description"`
	ErrorHint    string      `json:"error_hint"`
	ErrorURI     string      `json:"error_uri"`
}

// expiresIn accepts a JSON number or a numeric string (some servers send
// "3600"). Anything else (a word, a negative number, an object) reads as
// unknown (0), like a missing expires_in: the caller then stores the
// current time as the expiry so the next run refreshes. Refusing the
// answer instead would drop a rotated refresh token, and with it the chain,
// over a field that only says when to refresh next.
type expiresIn int64

func (e *expiresIn) UnmarshalJSON(b []byte) error {
	*e = 0
	s := string(b)
	if len(s) > 0 && s[0] == '"' {
		if json.Unmarshal(b, &s) != nil {
			return nil
		}
		s = strings.TrimSpace(s)
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil && f > 0 && f <= 1<<40 {
		*e = expiresIn(f)
	}
	return nil
}

// errorString accepts the "error" field as a string; anything else present
// there (an object, say) still marks the answer as a failure.
type errorString string

func (e *errorString) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*e = errorString(s)
		return nil
	}
	if string(b) != "null" {
		*e = errorString("unknown_error")
	}
	return nil
}

// ParseResponse turns a token endpoint answer into a Token or an error. now
// is the time the request was sent, from which Expiry is counted. body must
// already be bounded by the caller; truncated reports whether it was cut at
// the bound.
func ParseResponse(status int, header http.Header, body []byte, truncated bool, now time.Time) (*Token, error) {
	ctype := header.Get("Content-Type")
	mediaType, _, _ := mime.ParseMediaType(ctype)
	if status >= 300 && status < 400 {
		return nil, &ResponseError{Status: status, ContentType: mediaType, Reason: fmt.Sprintf("redirect to %q refused: check token-url", header.Get("Location"))}
	}
	if truncated {
		return nil, &ResponseError{Status: status, ContentType: mediaType, Reason: fmt.Sprintf("body larger than %d bytes", MaxBodyBytes)}
	}

	var tj tokenJSON
	jsonErr := json.Unmarshal(body, &tj)
	if jsonErr == nil && tj.ErrorCode != "" {
		// An RFC 6749 error, whatever the status (a 200 with an error field
		// is a failure too).
		return nil, &Error{Status: status, Code: string(tj.ErrorCode), Description: tj.ErrorDesc, Hint: tj.ErrorHint, URI: tj.ErrorURI}
	}
	if status < 200 || status > 299 {
		reason := fmt.Sprintf("HTTP %d without an OAuth error", status)
		if mediaType == "text/html" {
			reason = fmt.Sprintf("HTTP %d with an HTML page (a proxy or an outage page, not Hydra)", status)
		}
		return nil, &ResponseError{Status: status, ContentType: mediaType, Reason: reason}
	}
	if jsonErr != nil {
		return nil, &ResponseError{Status: status, ContentType: mediaType, Reason: "malformed JSON: " + jsonErrReason(jsonErr)}
	}
	if tj.AccessToken == "" {
		return nil, &ResponseError{Status: status, ContentType: mediaType, Reason: "no access_token in the answer"}
	}
	if tj.TokenType != "" && !strings.EqualFold(tj.TokenType, "bearer") {
		return nil, &ResponseError{Status: status, ContentType: mediaType, Reason: fmt.Sprintf("token_type %q is not bearer", tj.TokenType)}
	}
	t := &Token{
		AccessToken:  tj.AccessToken,
		TokenType:    tj.TokenType,
		RefreshToken: tj.RefreshToken,
		IDToken:      tj.IDToken,
		Scope:        tj.Scope,
	}
	if tj.ExpiresIn > 0 {
		t.ExpiresIn = time.Duration(tj.ExpiresIn) * time.Second
		t.Expiry = now.Add(t.ExpiresIn).UTC().Truncate(time.Second)
	}
	if tj.IDToken != "" {
		t.IDTokenExpiry = jwtExpiry(tj.IDToken)
	}
	return t, nil
}

// jsonErrReason describes a JSON error without quoting the body (a syntax
// error message never contains body text; an unmarshal type error names the
// field).
func jsonErrReason(err error) string {
	var syntax *json.SyntaxError
	if errors.As(err, &syntax) {
		return fmt.Sprintf("syntax error at byte %d", syntax.Offset)
	}
	var typ *json.UnmarshalTypeError
	if errors.As(err, &typ) {
		return fmt.Sprintf("field %q has the wrong type", typ.Field)
	}
	return err.Error()
}

// jwtExpiry reads the exp claim of a JWT without verifying it: the token
// came straight from the issuer over TLS, and exp is only used to pick the
// earlier of two expiries.
func jwtExpiry(jwt string) time.Time {
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return time.Time{}
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return time.Time{}
	}
	var claims struct {
		Exp json.Number `json:"exp"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		return time.Time{}
	}
	f, err := claims.Exp.Float64()
	if err != nil || f <= 0 {
		return time.Time{}
	}
	return time.Unix(int64(f), 0).UTC()
}

// readBody reads at most MaxBodyBytes and reports whether there was more.
func readBody(r io.Reader) ([]byte, bool, error) {
	b, err := io.ReadAll(io.LimitReader(r, MaxBodyBytes+1))
	if err != nil {
		return b, false, err
	}
	if len(b) > MaxBodyBytes {
		return b[:MaxBodyBytes], true, nil
	}
	return b, false, nil
}
