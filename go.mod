module github.com/amplitude/wizard-oauth-refresh

go 1.26.8

toolchain go1.26.10

require (
	github.com/google/go-github/v62 v62.0.0
	github.com/hashicorp/go-retryablehttp v0.7.8
	github.com/sethvargo/go-githubactions v1.3.1
	golang.org/x/crypto v0.59.0
)

require (
	github.com/google/go-querystring v1.1.0 // indirect
	github.com/hashicorp/go-cleanhttp v0.5.2 // indirect
	golang.org/x/sys v0.50.0 // indirect
)
