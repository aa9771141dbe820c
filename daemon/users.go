package daemon

import (
	"fmt"
	"slices"

	"keepstate/config"
)

// UserInfo is one user of the web administration as user_list reports it:
// never the hash.
type UserInfo struct {
	Name        string `json:"name"`
	Role        string `json:"role"`
	HasPassword bool   `json:"has_password"`
}

// UserList describes users for user_list.
func UserList(us []config.User) []UserInfo {
	out := make([]UserInfo, 0, len(us))
	for _, u := range us {
		out = append(out, UserInfo{Name: u.Name, Role: u.Role, HasPassword: u.PasswordHash != ""})
	}
	return out
}

// EditUsers applies one user operation to a UserDB.cfg list: add (a new user
// with role and hash), passwd (a new hash), role (a new role) or del. The admin
// socket and `keepstate user` on files share it.
func EditUsers(us []config.User, op, name, role, hash string) ([]config.User, error) {
	if err := config.CheckUserName(name); err != nil {
		return nil, err
	}
	i := slices.IndexFunc(us, func(u config.User) bool { return u.Name == name })
	if role != "" && role != config.RoleAdmin && role != config.RoleReadOnly {
		return nil, fmt.Errorf("role %q: want %s or %s", role, config.RoleAdmin, config.RoleReadOnly)
	}
	switch op {
	case "add":
		if i >= 0 {
			return nil, fmt.Errorf("user %q exists already (keepstate user passwd %s changes its password)", name, name)
		}
		if role == "" || hash == "" {
			return nil, fmt.Errorf("a new user needs a role and a password")
		}
		id := 1
		for _, u := range us {
			id = max(id, u.ID+1)
		}
		return append(us, config.User{ID: id, Name: name, Role: role, PasswordHash: hash}), nil
	case "passwd", "role", "del":
		if i < 0 {
			return nil, fmt.Errorf("no user %q", name)
		}
	default:
		return nil, fmt.Errorf("unknown user operation %q", op)
	}
	switch op {
	case "passwd":
		if hash == "" {
			return nil, fmt.Errorf("no password hash")
		}
		us[i].PasswordHash = hash
	case "role":
		us[i].Role = role
	case "del":
		us = slices.Delete(us, i, i+1)
	}
	return us, nil
}
