package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"golang.org/x/term"

	"github.com/g0lab/g0efilter/dashboardapi"
	"github.com/g0lab/g0efilter/internal/envconf"
)

// authFor makes the library's sign-in configuration from the
// environment's: it reads the users file or the provider's discovery
// document, and says loudly when nobody signs in.
func authFor(ctx context.Context, a authConfig, log *slog.Logger) (dashboardapi.AuthConfig, error) {
	out := dashboardapi.AuthConfig{
		Mode:           a.Mode,
		NoneRole:       a.NoneRole,
		TrustedProxies: a.TrustedProxies,
		UserHeader:     a.UserHeader,
		Operators:      a.Operators,
		Viewers:        a.Viewers,
		SessionTTL:     a.SessionTTL,
		SecureCookies:  a.SecureCookies,
	}
	switch a.Mode {
	case dashboardapi.AuthNone:
		log.Warn("AUTH=none: NOBODY SIGNS IN. Anyone who reaches this port can read every event"+
			" and, as "+a.NoneRole.String()+", act on them. Use it only behind something that signs people in,"+
			" and prefer AUTH=forward there", "role", a.NoneRole.String())
	case dashboardapi.AuthLocal:
		users, err := dashboardapi.LoadUsers(a.UsersFile)
		if err != nil {
			return out, fmt.Errorf("%s: %w", envUsersFile, err)
		}
		out.Users = users
		log.Info("people sign in with local accounts", "users_file", a.UsersFile)
	case dashboardapi.AuthForward:
		log.Info("people sign in at a forward-auth proxy", "header", cmpOr(a.UserHeader, dashboardapi.DefaultUserHeader),
			"trusted_proxies", fmt.Sprint(a.TrustedProxies))
	case dashboardapi.AuthOIDC:
		o, err := dashboardapi.NewOIDC(ctx, a.OIDC)
		if err != nil {
			return out, fmt.Errorf("%s: %w", envOIDCIssuer, err)
		}
		out.OIDC = o
		log.Info("people sign in with OpenID Connect", "issuer", a.OIDC.Issuer)
	}
	return out, nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// addUser is the adduser command: it adds or replaces an account in
// USERS_FILE, with the password from the terminal (asked twice, not
// echoed) or from the first line of standard input.
func addUser(args []string, lookup func(string) (string, bool), stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) < 1 || len(args) > 2 {
		fmt.Fprintf(stderr, "usage: dashboard adduser NAME [viewer|operator]\n")
		return exitUsage
	}
	role := dashboardapi.RoleViewer
	if len(args) == 2 {
		r, err := dashboardapi.ParseRole(args[1])
		if err != nil {
			fmt.Fprintf(stderr, "dashboard: adduser: %v\n", err)
			return exitUsage
		}
		role = r
	}
	p := envconf.Parser{Lookup: lookup}
	path := p.String(envUsersFile)
	if path == "" {
		fmt.Fprintf(stderr, "dashboard: adduser: set %s to the users file, such as /data/users\n", envUsersFile)
		return exitUsage
	}
	password, err := readPassword(stdin, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "dashboard: adduser: %v\n", err)
		return exitUsage
	}
	if err := dashboardapi.AddUser(path, args[0], role, password); err != nil {
		fmt.Fprintf(stderr, "dashboard: adduser: %v\n", err)
		return exitUsage
	}
	fmt.Fprintf(stdout, "%s (%s) is in %s; a running dashboard with AUTH=local takes it at the next sign-in\n", args[0], role, path)
	return exitOK
}

// readPassword reads a password: from a terminal twice without echo, or
// the first line of anything else.
func readPassword(stdin io.Reader, stderr io.Writer) ([]byte, error) {
	if f, ok := stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprintf(stderr, "Password (%d to %d characters): ", dashboardapi.MinPasswordLen, dashboardapi.MaxPasswordLen)
		first, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(stderr)
		if err != nil {
			return nil, err
		}
		fmt.Fprint(stderr, "Again: ")
		second, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(stderr)
		if err != nil {
			return nil, err
		}
		if !bytes.Equal(first, second) {
			return nil, errors.New("the passwords differ")
		}
		return first, nil
	}
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return nil, errors.New("no password on standard input")
	}
	return []byte(line), nil
}
