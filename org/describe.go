package org

import (
	"fmt"
	"strings"

	"github.com/ony-ai/ony/channel"
	"github.com/ony-ai/ony/store"
)

// DescribeUser is a person's settings on one line, each contact masked as its kind masks it, as
// `ony admin set-user` confirms a change and `ony demo` introduces its people.
func DescribeUser(u store.User, kinds *channel.Kinds) string {
	or := func(s, none string) string {
		if s == "" {
			return none
		}
		return s
	}
	var contacts []string
	for _, ck := range kinds.Contacts() {
		addr := "none"
		if c, ok := u.Contact(ck.Name); ok {
			addr = ck.Mask(c.Address)
		}
		contacts = append(contacts, ck.Name+" "+addr)
	}
	return fmt.Sprintf("name %q, %s, timezone %s, %s, quiet hours %s, groups %s",
		u.Name, u.Role, or(u.Timezone, "UTC"), strings.Join(contacts, ", "),
		or(u.QuietHours, "none"), or(strings.Join(u.Groups, ","), "none"))
}
