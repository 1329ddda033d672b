package bootstrap

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/amplitude/wizard-oauth-refresh/internal/ghsecrets"
)

// staleSlack is how much later than the record a secret may have been
// updated and still count as the failed write itself (the record's time is
// taken after the write, truncated to the second).
const staleSlack = time.Minute

// restore puts back a recovery record: the ciphertext as it is, with the
// key id it was sealed for.
func (c *cli) restore(ctx context.Context, args []string) error {
	fs := newFlagSet("bootstrap restore")
	var yes, dryRun, force bool
	fs.BoolVar(&yes, "yes", false, "")
	fs.BoolVar(&yes, "y", false, "")
	fs.BoolVar(&dryRun, "dry-run", false, "")
	fs.BoolVar(&force, "force", false, "")
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return flagError(err)
	}

	var text string
	if len(pos) == 0 || (len(pos) == 1 && pos[0] == "-") {
		if text, err = c.readRecord(ctx); err != nil {
			return err
		}
	} else {
		// A log line pasted without quotes arrives in pieces.
		text = strings.Join(pos, " ")
	}
	rec, err := ghsecrets.ParseRecord(text)
	if err != nil {
		return &Error{Code: CodeBadInput, What: "not a recovery record", Err: err, Action: "pass the whole wizard-recovery-v1.… record (or the log line holding it) as printed by the failed run"}
	}
	g, err := githubFromEnv(c.d.Getenv)
	if err != nil {
		return err
	}
	if g.token == "" {
		return errNoGitHubToken()
	}
	c.red.add(g.token)
	gh, err := c.client(g, g.token)
	if err != nil {
		return err
	}
	t := rec.Target()

	names := make([]string, len(rec.Secrets))
	for i, s := range rec.Secrets {
		names[i] = s.Name
	}
	c.printf("Record:  %s, sealed for key %s at %s\n", t, rec.KeyID, rec.Created.UTC().Format(time.RFC3339))
	c.printf("Secrets: %s\n", strings.Join(names, ", "))

	key, err := gh.PublicKey(ctx, t)
	if err != nil {
		return githubError(err, t, "the GitHub token cannot manage the Actions secrets of "+t.String())
	}
	if key.ID != rec.KeyID {
		return keyChanged(t, rec.KeyID, key.ID)
	}
	// A secret updated after the record was made holds something newer
	// (a later run, a re-bootstrap): the record would replace it with an
	// older, possibly already used, token.
	meta, err := gh.Secret(ctx, t, rec.Secrets[0].Name)
	if err != nil {
		return githubError(err, t, "cannot read secret "+rec.Secrets[0].Name)
	}
	if meta != nil && meta.UpdatedAt.After(rec.Created.Add(staleSlack)) {
		msg := fmt.Sprintf("secret %s was updated at %s, after the record was made at %s", meta.Name, meta.UpdatedAt.UTC().Format(time.RFC3339), rec.Created.UTC().Format(time.RFC3339))
		if !force {
			return &Error{Code: CodeStaleRecord, What: msg + ": it holds a newer value than the record",
				Action: "do not restore: a later run or a re-bootstrap has stored a newer token (restoring would put back an older one, which Hydra may treat as reuse); pass --force only if you know the secret's current value is wrong"}
		}
		c.warnf("%s; restoring anyway (--force)", msg)
	}
	c.printf("GitHub:  the key is unchanged (%s): GitHub can open the record.\n", key.ID)
	if dryRun {
		c.printf("\nDry run: the record can be restored; nothing was written.\n")
		return nil
	}
	if !yes {
		if err := c.confirm(ctx, fmt.Sprintf("Restore %s to %s?", strings.Join(names, ", "), t)); err != nil {
			return err
		}
	}

	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), writeTimeout)
	defer cancel()
	var failed []string
	var firstErr error
	for i, s := range rec.Secrets {
		err := gh.PutSealed(wctx, t, rec.KeyID, s)
		if ghsecrets.KindOf(err) == ghsecrets.KindInvalid {
			// 422: perhaps the key rotated since the check.
			if now, kerr := gh.PublicKey(wctx, t); kerr == nil && now.ID != rec.KeyID {
				return keyChanged(t, rec.KeyID, now.ID)
			}
		}
		if err != nil {
			c.warnf("%v", err)
			failed = append(failed, s.Name)
			if i == 0 {
				firstErr = err
			}
			continue
		}
		c.printf("Restored secret %s.\n", s.Name)
	}
	switch {
	case firstErr != nil:
		e := githubError(firstErr, t, "restoring "+rec.Secrets[0].Name+" failed")
		e.Code = CodeNotStored
		e.Action = "run the same restore again before the next scheduled run; " + e.Action
		return e
	case len(failed) > 0:
		return &Error{Code: CodePartial, What: fmt.Sprintf("%s restored, but %s not", rec.Secrets[0].Name, strings.Join(failed, ", ")),
			Action: "nothing urgent: the action writes the other secrets on its next run"}
	}
	c.printf("\nDone: the record is restored; the next scheduled run continues the chain.\n")
	return nil
}

func keyChanged(t ghsecrets.Target, was, now string) *Error {
	return &Error{Code: CodeKeyChanged, Err: ghsecrets.ErrKeyChanged,
		What:   fmt.Sprintf("the record was sealed for key %s of %s, whose key is now %s", was, t, now),
		Action: "GitHub can no longer open the record, so the token in it is lost; re-bootstrap: " + Command + " --login"}
}

// readRecord reads standard input up to the first line that holds a record.
func (c *cli) readRecord(ctx context.Context) (string, error) {
	var seen bool
	if c.stdinIsTerminal() {
		c.printf("Paste the recovery record (or the log line holding it) and press Enter:\n")
	}
	for {
		line, ok, err := c.readLine(ctx)
		if ctx.Err() != nil {
			return "", &Error{Code: CodeInternal, What: "interrupted: nothing was written", Err: ctx.Err()}
		}
		if err != nil {
			return "", &Error{Code: CodeBadInput, What: "cannot read standard input", Err: err}
		}
		if !ok {
			what := "standard input is empty"
			if seen {
				what = "no wizard-recovery-v1 record on standard input"
			}
			return "", &Error{Code: CodeBadInput, What: what, Action: "pass the record as an argument, or paste it on standard input"}
		}
		seen = true
		if strings.Contains(line, ghsecrets.RecoveryPrefix) {
			return line, nil
		}
	}
}
