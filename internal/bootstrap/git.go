package bootstrap

import (
	"context"
	"net/url"
	"os/exec"
	"strings"

	"github.com/amplitude/wizard-oauth-refresh/internal/inputs"
)

// DefaultRepo is used when --repo is not given and the working directory
// is not a GitHub checkout.
const DefaultRepo = "amplitude/wizard"

// RunGit runs git with args in the working directory and returns stdout.
func RunGit(ctx context.Context, args ...string) ([]byte, error) {
	return exec.CommandContext(ctx, "git", args...).Output()
}

// parseRemote reads owner/name from a git remote URL: https
// (https://github.com/o/r.git), scp-like ssh (git@github.com:o/r.git) or
// URL-style ssh/git (ssh://git@github.com/o/r). The host must be one of
// hosts (lower case).
func parseRemote(remote string, hosts map[string]bool) (repo string, ok bool) {
	remote = strings.TrimSpace(remote)
	var host, path string
	if strings.Contains(remote, "://") {
		u, err := url.Parse(remote)
		if err != nil {
			return "", false
		}
		switch u.Scheme {
		case "https", "http", "ssh", "git", "git+ssh", "ssh+git":
		default:
			return "", false
		}
		host, path = u.Hostname(), u.Path
	} else {
		// scp-like: [user@]host:path
		at := strings.LastIndex(remote[:max(strings.Index(remote, ":"), 0)], "@")
		hostPath := remote[at+1:]
		var found bool
		host, path, found = strings.Cut(hostPath, ":")
		if !found || strings.Contains(host, "/") {
			return "", false
		}
	}
	if !hosts[strings.ToLower(host)] {
		return "", false
	}
	path = strings.TrimSuffix(strings.Trim(path, "/"), ".git")
	owner, name, err := inputs.SplitRepo(path)
	if err != nil {
		return "", false
	}
	return owner + "/" + name, true
}

// githubHosts are the hosts whose remotes name a repository of the API in
// use: github.com, or the GitHub Enterprise Server host of GITHUB_API_URL.
func githubHosts(apiURL string) map[string]bool {
	hosts := map[string]bool{"github.com": true, "www.github.com": true, "ssh.github.com": true}
	if apiURL != "" {
		if u, err := url.Parse(apiURL); err == nil && u.Hostname() != "" {
			h := strings.ToLower(u.Hostname())
			hosts[h] = true
			// api.example.com serves example.com's repositories (GHE.com).
			hosts[strings.TrimPrefix(h, "api.")] = true
		}
	}
	return hosts
}
