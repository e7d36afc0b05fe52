package audit

// Event is one security event. Fields hold no secret: never a password,
// token, cookie, ticket or message body (callers pass reasons, not values).
type Event struct {
	Type   string            `json:"type"`             // e.g. "handshake.refused", "login.failed"
	Reason string            `json:"reason,omitempty"` // e.g. "origin_not_allowed"
	IP     string            `json:"ip,omitempty"`
	User   string            `json:"user,omitempty"`
	Fields map[string]string `json:"fields,omitempty"` // extra detail (origin, channel, ...)
}
