package hydraemu

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Every error body the emulator sends is built here, so a real-Hydra run that
// finds other wording only changes strings in this file.
//
// Hydra (fosite v0.49.0 errors.go) builds error_description as
// DescriptionField + " " + HintField with every `"` replaced by `'`, and with
// its defaults (include_legacy_error_fields=false, expose_internal_errors=false)
// the token endpoint body is json.Marshal of {"error","error_description"}:
// no error_hint, no error_debug, no trailing newline.

// DescriptionField and default HintField values of fosite's RFC6749Error vars.
const (
	descInvalidRequest = "The request is missing a required parameter, includes an invalid parameter value, includes a parameter more than once, or is otherwise malformed."
	hintInvalidRequest = "Make sure that the various parameters are correct, be aware of case sensitivity and trim your parameters. Make sure that the client you are using has exactly whitelisted the redirect_uri you specified."
	descInvalidGrant   = "The provided authorization grant (e.g., authorization code, resource owner credentials) or refresh token is invalid, expired, revoked, does not match the redirection URI used in the authorization request, or was issued to another client."
	descInvalidClient  = "Client authentication failed (e.g., unknown client, no client authentication included, or unsupported authentication method)."
)

// OAuthError is one error answer of Hydra.
type OAuthError struct {
	Status      int    // HTTP status at the token endpoint
	Code        string // the "error" member, e.g. "invalid_grant"
	Description string // the whole "error_description" member
	base        string // DescriptionField, to derive other hints from
}

func newError(status int, code, base, hint string) *OAuthError {
	return (&OAuthError{Status: status, Code: code, base: base}).withHint(hint)
}

// withHint is fosite's WithHint: same error, other HintField.
func (e *OAuthError) withHint(hint string) *OAuthError {
	c := *e
	c.Description = strings.ReplaceAll(strings.TrimSpace(c.base+" "+hint), `"`, "'")
	return &c
}

// Body is the token endpoint JSON body for this error.
func (e *OAuthError) Body() []byte {
	b, _ := json.Marshal(struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}{e.Code, e.Description})
	return b
}

var (
	errInvalidRequest  = newError(400, "invalid_request", descInvalidRequest, hintInvalidRequest)
	errInvalidGrant    = newError(400, "invalid_grant", descInvalidGrant, "")
	errInvalidClient   = newError(401, "invalid_client", descInvalidClient, "")
	errInvalidScope    = newError(400, "invalid_scope", "The requested scope is invalid, unknown, or malformed.", "")
	errUnsupportedResp = newError(400, "unsupported_response_type", "The authorization server does not support obtaining a token using this method.", "")
	errInvalidState    = newError(400, "invalid_state", "The state is missing or does not have enough characters and is therefore considered too weak.", "")
	errScopeNotGranted = newError(403, "scope_not_granted", "The token was not granted the requested scope.", "")
	errParseBody       = errInvalidRequest.withHint("Unable to parse HTTP body, make sure to send a properly formatted form request body.")
)

// Token endpoint, any grant (fosite access_request_handler.go, client_authentication.go).
var (
	ErrEmptyBody        = errInvalidRequest.withHint("The POST body can not be empty.") // also any non-form Content-Type
	ErrMissingGrantType = errInvalidRequest.withHint("Request parameter 'grant_type' is missing")
	// No handler claims the grant type: `return nil, errorsx.WithStack(ErrInvalidRequest)`
	// - invalid_request with the default hint, not unsupported_grant_type.
	ErrUnsupportedGrantType = errInvalidRequest
	ErrMissingClientID      = errInvalidRequest.withHint("Client credentials missing or malformed in both HTTP Authorization header and HTTP POST body.")
	// Unknown client or wrong secret: ErrInvalidClient.WithWrap(err).WithDebug(...), no hint.
	ErrUnknownClient = errInvalidClient
)

// Token endpoint, grant_type=refresh_token (fosite handler/oauth2/flow_refresh.go).
var (
	// ErrInactiveToken from GetRefreshTokenSession: "Detected refresh token
	// reuse"; handleRefreshTokenReuse has revoked the whole chain.
	ErrRefreshTokenReused = errInvalidGrant.withHint("The refresh token was already used.")
	// ErrNotFound: never issued, revoked (deleted) or malformed.
	ErrRefreshTokenInvalid   = errInvalidGrant.withHint("The refresh token is malformed or not valid.")
	ErrRefreshTokenExpired   = errInvalidGrant.withHint("The refresh token expired.")
	ErrRefreshClientMismatch = errInvalidGrant.withHint("The OAuth 2.0 Client ID from this request does not match the ID during the initial token issuance.")
	// The grant lacks offline/offline_access (oauth2.refresh_token_scopes default).
	ErrRefreshScopeNotGranted = errScopeNotGranted.withHint("The OAuth 2.0 Client was not granted scope offline or offline_access and may thus not perform the 'refresh_token' authorization grant.")
	// Known signature, HMAC mismatch: ErrInvalidRequest.WithWrap(err).WithDebug(...).
	ErrRefreshTokenSignature = errInvalidRequest
	// handleRefreshTokenEndpointStorageError(ErrNotFound): another request rotated
	// the token between validation and commit. Nothing is revoked. Sent for a
	// concurrent refresh with ConcurrentRefreshInvalidRequest (and when the chain
	// was revoked between validation and commit).
	ErrRefreshConcurrent = errInvalidRequest.withHint("Failed to refresh token. Please retry the request.")
	// fosite's ErrServerError with no hint: what real Hydra on SQLite answers a
	// concurrent refresh whose read hit the locked database. Nothing is
	// consumed or revoked. Sent with ConcurrentRefreshServerError.
	ErrServerError = newError(500, "server_error", "The authorization server encountered an unexpected condition that prevented it from fulfilling the request.", "")
)

// Token endpoint, grant_type=authorization_code
// (fosite handler/oauth2/flow_authorize_code_token.go, handler/pkce/handler.go).
var (
	ErrAuthCodeInvalid          = errInvalidGrant // unknown or expired: no hint
	ErrAuthCodeReused           = errInvalidGrant.withHint("The authorization code has already been used.")
	ErrAuthCodeClientMismatch   = errInvalidGrant.withHint("The OAuth 2.0 Client ID from this request does not match the one from the authorize request.")
	ErrAuthCodeRedirectMismatch = errInvalidGrant.withHint(`The "redirect_uri" from this request does not match the one from the authorize request.`)
	ErrPKCEMismatch             = errInvalidGrant.withHint("The PKCE code challenge did not match the code verifier.")
	ErrPKCEVerifierTooShort     = errInvalidGrant.withHint("The PKCE code verifier must be at least 43 characters.")
	ErrPKCEVerifierTooLong      = errInvalidGrant.withHint("The PKCE code verifier can not be longer than 128 characters.")
	ErrPKCEVerifierFormat       = errInvalidGrant.withHint("The PKCE code verifier must only contain [a-Z], [0-9], '-', '.', '_', '~'.")
	// fosite v0.49.0 deletes the PKCE session before comparing, so a retry after a
	// wrong verifier gets this.
	ErrPKCESessionMissing = errInvalidGrant.withHint("Unable to find initial PKCE data tied to this request")
)

// Authorization endpoint (fosite authorize_request_handler.go, authorize_helper.go,
// handler/pkce/handler.go).
var (
	ErrAuthorizeUnknownClient   = errInvalidClient.withHint("The requested OAuth 2.0 Client does not exist.")
	ErrRedirectURINotRegistered = errInvalidRequest.withHint("The 'redirect_uri' parameter does not match any of the OAuth 2.0 Client's pre-registered redirect urls.")
	ErrRedirectURIRequired      = errInvalidRequest.withHint("The 'redirect_uri' parameter is required when using OpenID Connect 1.0.")
	ErrStateTooShort            = errInvalidState.withHint("Request parameter 'state' must be at least be 8 characters long to ensure sufficient entropy.")
	ErrMissingResponseType      = errUnsupportedResp.withHint("`The request is missing the 'response_type' parameter.") // sic
	ErrPKCERequired             = errInvalidRequest.withHint("Clients must include a code_challenge when performing the authorize code flow, but it is missing.")
	ErrPKCERequiredPublic       = errInvalidRequest.withHint("This client must include a code_challenge when performing the authorize code flow, but it is missing.")
	ErrPKCEPlain                = errInvalidRequest.withHint("Clients must use code_challenge_method=S256, plain is not allowed.")
	ErrPKCEMethod               = errInvalidRequest.withHint("The code_challenge_method is not supported, use S256 instead.")
	// What a consent app typically passes to the consent reject API; Hydra copies
	// error and error_description verbatim (RequestDeniedError.ToRFCError).
	ErrAccessDenied = &OAuthError{Status: 403, Code: "access_denied", Description: "The resource owner denied the request"}
)

func errScopeNotAllowed(scope string) *OAuthError {
	return errInvalidScope.withHint(fmt.Sprintf("The OAuth 2.0 Client is not allowed to request scope '%s'.", scope))
}

func errResponseTypeNotAllowed(rt string) *OAuthError {
	return errUnsupportedResp.withHint(fmt.Sprintf("The client is not allowed to request response_type '%s'.", rt))
}

func errRedirectURIInvalid(uri string) *OAuthError {
	return errInvalidRequest.withHint(fmt.Sprintf("The redirect URI '%s' contains an illegal character (for example #) or is otherwise invalid.", uri))
}

func errMethodNotPost(method string) *OAuthError {
	return errInvalidRequest.withHint(fmt.Sprintf("HTTP method is '%s', expected 'POST'.", method))
}
