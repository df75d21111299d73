package audit

// Chat accounts (issue 14): a person linked a chat account to themselves (with a code sent to the bot,
// or matched by their email in the console) or it was unlinked. The subject is the person; the channel
// is the kind linked; the method says how. The log never holds the chat account's id or address.
const (
	ContactLinked   EventType = "contact.linked"
	ContactUnlinked EventType = "contact.unlinked"
)

// How a chat account was linked (Details.Method).
const (
	LinkMethodCode  = "code"
	LinkMethodEmail = "email"
)

func init() { eventTypes = append(eventTypes, ContactLinked, ContactUnlinked) }
