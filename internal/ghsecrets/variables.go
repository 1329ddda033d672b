package ghsecrets

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"time"

	"github.com/google/go-github/v62/github"
)

// Variable is an Actions configuration variable. Unlike a secret its value
// is readable: variables are for settings such as the zone, never for
// credentials.
type Variable struct {
	Name      string
	Value     string
	UpdatedAt time.Time
}

// errOrgVariables: organization variables need a visibility and are not
// something the bootstrap writes.
var errOrgVariables = errors.New("organization variables are not supported; use a repository or environment target")

// variablesPath is the REST path of the target's variables collection.
func (t Target) variablesPath() (string, error) {
	esc := url.PathEscape
	switch {
	case t.Org != "":
		return "", errOrgVariables
	case t.Environment != "":
		return "repos/" + esc(t.Owner) + "/" + esc(t.Repo) + "/environments/" + esc(t.Environment) + "/variables", nil
	default:
		return "repos/" + esc(t.Owner) + "/" + esc(t.Repo) + "/actions/variables", nil
	}
}

// Variable reads an Actions variable. It returns (nil, nil) when the
// variable does not exist.
func (c *Client) Variable(ctx context.Context, t Target, name string) (*Variable, error) {
	path, err := t.variablesPath()
	if err != nil {
		return nil, &Error{Op: "read variable " + name, Kind: KindOther, Message: err.Error(), Err: err}
	}
	var v github.ActionsVariable
	err = c.call(ctx, "read variable "+name, func(ctx context.Context) (*github.Response, error) {
		req, err := c.gh.NewRequest(http.MethodGet, path+"/"+url.PathEscape(name), nil)
		if err != nil {
			return nil, err
		}
		return c.gh.Do(ctx, req, &v)
	})
	if KindOf(err) == KindNotFound {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	out := &Variable{Name: v.Name, Value: v.Value}
	if v.UpdatedAt != nil {
		out.UpdatedAt = v.UpdatedAt.Time
	}
	return out, nil
}

// CreateVariable creates an Actions variable. GitHub answers 409 (an
// *Error with Status 409) when it already exists.
func (c *Client) CreateVariable(ctx context.Context, t Target, name, value string) error {
	path, err := t.variablesPath()
	if err != nil {
		return &Error{Op: "create variable " + name, Kind: KindOther, Message: err.Error(), Err: err}
	}
	return c.call(ctx, "create variable "+name, func(ctx context.Context) (*github.Response, error) {
		req, err := c.gh.NewRequest(http.MethodPost, path, &github.ActionsVariable{Name: name, Value: value})
		if err != nil {
			return nil, err
		}
		return c.gh.Do(ctx, req, nil)
	})
}

// UpdateVariable updates an existing Actions variable (404 when it does not
// exist).
func (c *Client) UpdateVariable(ctx context.Context, t Target, name, value string) error {
	path, err := t.variablesPath()
	if err != nil {
		return &Error{Op: "update variable " + name, Kind: KindOther, Message: err.Error(), Err: err}
	}
	return c.call(ctx, "update variable "+name, func(ctx context.Context) (*github.Response, error) {
		req, err := c.gh.NewRequest(http.MethodPatch, path+"/"+url.PathEscape(name), &github.ActionsVariable{Name: name, Value: value})
		if err != nil {
			return nil, err
		}
		return c.gh.Do(ctx, req, nil)
	})
}

// SetVariable creates the variable, or updates it when it exists. exists
// is what the caller believes (from Variable, say); when GitHub disagrees
// (409 on create, 404 on update: someone else changed it meanwhile, or a
// create whose answer was lost was retried) the other call is made once.
// It reports whether the variable was created.
func (c *Client) SetVariable(ctx context.Context, t Target, name, value string, exists bool) (created bool, err error) {
	if !exists {
		err = c.CreateVariable(ctx, t, name, value)
		if !isStatus(err, http.StatusConflict) {
			return err == nil, err
		}
		return false, c.UpdateVariable(ctx, t, name, value)
	}
	err = c.UpdateVariable(ctx, t, name, value)
	if KindOf(err) != KindNotFound {
		return false, err
	}
	if err := c.CreateVariable(ctx, t, name, value); err != nil {
		return false, err
	}
	return true, nil
}

func isStatus(err error, status int) bool {
	var e *Error
	return errors.As(err, &e) && e.Status == status
}
