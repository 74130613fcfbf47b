package dashboardapi

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// BcryptCost is the work factor of the password hashes [AddUser] writes:
// about a quarter of a second on a current core.
const BcryptCost = 12

// hashCost is BcryptCost but in tests, which sign in hundreds of times.
var hashCost = BcryptCost

// Password lengths [AddUser] accepts, in bytes; bcrypt reads at most 72.
const (
	MinPasswordLen = 12
	MaxPasswordLen = 72
)

// Errors of the users file.
var (
	ErrBadUserName = errors.New("dashboardapi: user name: want 1 to 64 letters, digits and . _ @ -")
	ErrBadPassword = fmt.Errorf("dashboardapi: password: want %d to %d bytes", MinPasswordLen, MaxPasswordLen)
)

// Users are local accounts, read from a users file: one account a line,
//
//	name:role:bcrypt-hash
//
// with role viewer or operator; blank lines and lines starting with # are
// skipped. Write it with [AddUser] (`dashboard adduser`). The file is read
// again when its size or modification time changes, so an account added
// or removed takes effect at the next sign-in without a restart.
type Users struct {
	path string

	mu      sync.Mutex
	size    int64
	mtime   time.Time
	byName  map[string]account
	onPurge func(user string) // told of accounts removed or changed
}

type account struct {
	role Role
	hash []byte
}

// dummyHash is compared against when the user is unknown, so that the time
// a sign-in takes does not tell whether a name exists.
var dummyHash = sync.OnceValue(func() []byte {
	h, _ := bcrypt.GenerateFromPassword([]byte("g0efilter-no-such-user"), hashCost)
	return h
})

// LoadUsers reads the users file at path. It refuses a file without any
// account: nobody could sign in.
func LoadUsers(path string) (*Users, error) {
	u := &Users{path: path}
	if err := u.reload(); err != nil {
		return nil, err
	}
	if len(u.byName) == 0 {
		return nil, fmt.Errorf("dashboardapi: users file %s has no account: add one with `dashboard adduser NAME operator`", path)
	}
	return u, nil
}

// Path is the users file's path.
func (u *Users) Path() string { return u.path }

// reload reads the file if it changed. u.mu is held, or u is new.
func (u *Users) reload() error {
	fi, err := os.Stat(u.path)
	if err != nil {
		return fmt.Errorf("dashboardapi: users file: %w", err)
	}
	if u.byName != nil && fi.Size() == u.size && fi.ModTime().Equal(u.mtime) {
		return nil
	}
	data, err := os.ReadFile(u.path)
	if err != nil {
		return fmt.Errorf("dashboardapi: users file: %w", err)
	}
	byName, err := parseUsers(data)
	if err != nil {
		return fmt.Errorf("dashboardapi: users file %s: %w", u.path, err)
	}
	if u.onPurge != nil {
		for name, old := range u.byName {
			if now, ok := byName[name]; !ok || now.role != old.role || !bytes.Equal(now.hash, old.hash) {
				u.onPurge(name)
			}
		}
	}
	u.byName, u.size, u.mtime = byName, fi.Size(), fi.ModTime()
	return nil
}

func parseUsers(data []byte) (map[string]account, error) {
	out := map[string]account{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, rest, ok1 := strings.Cut(line, ":")
		roleText, hash, ok2 := strings.Cut(rest, ":")
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("line %d: want name:role:bcrypt-hash", n)
		}
		if err := checkUserName(name); err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		role, err := ParseRole(roleText)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		if _, err := bcrypt.Cost([]byte(hash)); err != nil {
			return nil, fmt.Errorf("line %d: %s: not a bcrypt hash: %w", n, name, err)
		}
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("line %d: %s: listed twice", n, name)
		}
		out[name] = account{role: role, hash: []byte(hash)}
	}
	return out, sc.Err()
}

func checkUserName(name string) error {
	if name == "" || len(name) > 64 {
		return ErrBadUserName
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("._@-", c)) {
			return ErrBadUserName
		}
	}
	return nil
}

// verify checks name's password and returns the account's role. An
// unknown name takes as long as a wrong password.
func (u *Users) verify(name string, password []byte) (Role, bool) {
	u.mu.Lock()
	err := u.reload()
	acc, ok := u.byName[name]
	u.mu.Unlock()
	if err != nil {
		ok = false // a file broken meanwhile lets nobody in
	}
	hash := acc.hash
	if !ok {
		hash = dummyHash()
	}
	if bcrypt.CompareHashAndPassword(hash, password) != nil || !ok {
		return RoleNone, false
	}
	return acc.role, true
}

// AddUser adds the account name with role and password to the users file
// at path, or replaces the account of that name, creating the file (mode
// 0600) if need be. It writes a new file and renames it over the old one.
func AddUser(path, name string, role Role, password []byte) error {
	if err := checkUserName(name); err != nil {
		return err
	}
	if role != RoleViewer && role != RoleOperator {
		return fmt.Errorf("dashboardapi: role: want viewer or operator")
	}
	if len(password) < MinPasswordLen || len(password) > MaxPasswordLen {
		return ErrBadPassword
	}
	hash, err := bcrypt.GenerateFromPassword(password, hashCost)
	if err != nil {
		return fmt.Errorf("dashboardapi: %w", err)
	}
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("dashboardapi: users file: %w", err)
	}
	if _, err := parseUsers(old); err != nil {
		return fmt.Errorf("dashboardapi: users file %s: %w", path, err)
	}
	var b bytes.Buffer
	if len(old) == 0 {
		b.WriteString("# g0efilter dashboard accounts: name:role:bcrypt-hash. Add with `dashboard adduser NAME [viewer|operator]`.\n")
	}
	replaced := false
	sc := bufio.NewScanner(bytes.NewReader(old))
	for sc.Scan() {
		line := sc.Text()
		if n, _, _ := strings.Cut(strings.TrimSpace(line), ":"); n == name {
			replaced = true
			fmt.Fprintf(&b, "%s:%s:%s\n", name, role, hash)
			continue
		}
		b.WriteString(line + "\n")
	}
	if !replaced {
		fmt.Fprintf(&b, "%s:%s:%s\n", name, role, hash)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".users-*")
	if err != nil {
		return fmt.Errorf("dashboardapi: users file: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(b.Bytes())
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("dashboardapi: users file: %w", err)
	}
	return nil
}
