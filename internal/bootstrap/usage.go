package bootstrap

// Command is how the README and the messages name the CLI.
const Command = "go run github.com/amplitude/wizard-oauth-refresh/cmd/bootstrap@latest"

const usageText = `bootstrap seeds a repository's GitHub Actions secrets with an Amplitude OAuth
session, for the wizard-oauth-refresh action to keep fresh every hour.

Usage:
  bootstrap [flags]                   push a session (see "Where the session comes from")
  bootstrap restore [flags] [RECORD]  put back a recovery record printed by a failed run

  (from anywhere: ` + Command + ` [flags])

Where the session comes from:
  --login     Recommended. Sign in in the browser and mint a new token chain that
              only CI uses. The tokens go straight to GitHub; they never touch disk.
  (default)   The wizard's stored session: $AMPLITUDE_WIZARD_CACHE_DIR/oauth-session.json
              (default ~/.amplitude/wizard/oauth-session.json), else the legacy
              ~/.ampli.json. After the push its refresh token is removed from the file
              and this machine must sign in again: a refresh token kept in two places
              is soon presented twice, and Hydra then revokes the whole chain.

What it writes (to the repository, or to the --environment):
  secret    WIZARD_REFRESH_TOKEN        first; if it fails nothing else is written
  secret    WIZARD_OAUTH_TOKEN
  secret    WIZARD_EXPIRES_AT           ISO 8601
  secret    WIZARD_SECRET_REFRESH_PAT   with --pat-stdin: the token the action writes with
  secret    WIZARD_ZONE                 with --zone-secret
  variable  WIZARD_ZONE                 us or eu; created, or updated when it exists

GitHub access:
  GH_TOKEN or GITHUB_TOKEN, e.g. export GH_TOKEN=$(gh auth token): a token with
  Secrets and Variables read and write on the repository (Environments read and
  write for --environment). GITHUB_API_URL selects GitHub Enterprise Server. The
  token is checked against the repository (public key fetch) before anything is
  written, before the browser opens and before the session file is touched.

Flags:
  --login                   sign in in the browser (recommended, see above)
  --zone us|eu              the zone: picks the session entry, or the login's Hydra
                            host and OAuth client (login default: us)
  --session-file PATH       read this session file instead of the wizard's
  --keep-local-session      do not remove the refresh token from the session file
                            (the laptop and CI then share one chain: see above)
  --repo OWNER/NAME         target repository (default: the origin remote of the
                            current git checkout, else ` + DefaultRepo + `)
  --environment NAME        write this deployment environment's secrets and variable
  --pat-stdin               read WIZARD_SECRET_REFRESH_PAT's value from the first line
                            of standard input (never from a flag or an argument)
  --zone-secret             also write the zone as a secret, for workflows that read
                            secrets.WIZARD_ZONE
  -y, --yes                 do not ask for confirmation
  --dry-run                 check everything, show the plan, write nothing (no login,
                            no change to the session file)

Names (like the action's inputs):
  --refresh-token-secret NAME   default WIZARD_REFRESH_TOKEN
  --access-token-secret NAME    default WIZARD_OAUTH_TOKEN
  --expires-at-secret NAME      default WIZARD_EXPIRES_AT
  --id-token-secret NAME        also store the id token (default: not stored)
  --pat-secret NAME             default WIZARD_SECRET_REFRESH_PAT
  --zone-variable NAME          default WIZARD_ZONE (also the --zone-secret name)

Login (forks, tests):
  --hydra-url URL           Hydra base URL: {URL}/oauth2/auth and {URL}/oauth2/token
  --auth-url URL            authorization endpoint override
  --token-url URL           token endpoint override
  --client-id ID            OAuth client id override
  --login-timeout DURATION  how long to wait for the browser (default 5m)
  --no-browser              only print the URL, do not open a browser
  --redirect-host HOST      localhost (default, what the Amplitude clients register)
                            or 127.0.0.1
  URLs must be https://, or http:// on a loopback host. The callback listens on
  127.0.0.1 only, on the first free port of 13222..13232.

Restore:
  bootstrap restore [--yes] [--dry-run] [--force] [RECORD | -]
  RECORD is the wizard-recovery-v1.… record a failed run printed, alone or in the
  whole pasted log line; without it (or with -) it is read from standard input.
  It is written as it is, sealed for the repository key it was made for; if that
  key has changed since, GitHub can no longer open it: re-bootstrap instead.
  --force restores even when the secret was updated after the record was made.

Examples:
  export GH_TOKEN=$(gh auth token)
  bootstrap --login
  bootstrap --login --repo my-org/wizard-fork --zone eu
  printf '%s\n' "$ACTION_PAT" | bootstrap --login --pat-stdin --yes
  bootstrap --dry-run
  bootstrap restore 'wizard-recovery-v1.eyJ2IjoxLC…'

Exit codes:
  0 done (or dry run)    1 internal error or interrupted   2 bad input
  3 not confirmed        4 no usable wizard session        5 login failed
  6 code exchange failed
  20 GitHub token rejected (401)   21 permission missing (403)   22 not found (404)
  23 rate limited                  24 GitHub unavailable         25 unusable public key
  26 restore: the key changed      27 restore: the secret is newer than the record
  30 refresh token not stored (nothing else written, nothing handed off)
  31 refresh token stored, another secret or the variable not
  32 pushed, but the session file still holds the refresh token
  33 the wizard refreshed the session meanwhile: the pushed token is already used
`
