package audit

// Phone verification (issue 15): a person proved they hold the phone number in their settings by
// typing back a code texted to it. The subject is the person, the channel is "sms" (how the code
// travelled), the method is "code". The log never holds the number or the code.
const ContactVerified EventType = "contact.verified"

func init() { eventTypes = append(eventTypes, ContactVerified) }
