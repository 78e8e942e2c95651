package registry

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strings"
)

// ErrAuthFile is wrapped by the errors of [LoadAuthFile] for a file that is
// readable but malformed.
var ErrAuthFile = errors.New("invalid auth file")

// LoadAuthFile reads users for [WithAuth] from a file of "user:password"
// lines. Blank lines and lines starting with '#' are skipped; a password
// may contain ':' (the first one separates it from the user name) but
// surrounding spaces are trimmed from the line.
func LoadAuthFile(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("load auth file: %w", err)
	}
	defer f.Close()

	users := map[string]string{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		bad := func(problem string) error {
			return fmt.Errorf("%w %s, line %d: %s (want user:password)", ErrAuthFile, path, n, problem)
		}
		user, pass, ok := strings.Cut(line, ":")
		switch {
		case !ok:
			return nil, bad("no ':' between user and password")
		case user == "":
			return nil, bad("empty user name")
		case strings.ContainsAny(user, " \t"):
			return nil, bad("user name contains whitespace")
		case pass == "":
			return nil, bad(fmt.Sprintf("empty password for user %q", user))
		}
		if _, dup := users[user]; dup {
			return nil, bad(fmt.Sprintf("user %q defined twice", user))
		}
		users[user] = pass
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("load auth file %s: %w", path, err)
	}
	if len(users) == 0 {
		return nil, fmt.Errorf("%w %s: no users", ErrAuthFile, path)
	}
	return users, nil
}
