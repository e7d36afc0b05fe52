package hub

import "sort"

// ChannelCount is one active channel on this node: how many local
// subscriptions it has and how many distinct users they belong to.
type ChannelCount struct {
	Channel     string `json:"channel"`
	Subscribers int    `json:"subscribers"`
	Users       int    `json:"users"`
}

// Channels lists the channels with at least one local subscriber for which
// keep returns true (nil keeps all), sorted by name. It takes each shard's
// read lock once, so a listing costs one pass over the live channels and
// never blocks delivery for long.
func (h *Hub) Channels(keep func(channel string) bool) []ChannelCount {
	var out []ChannelCount
	for i := range h.shards {
		sh := &h.shards[i]
		sh.mu.RLock()
		for ch, set := range sh.subs {
			if keep != nil && !keep(ch) {
				continue
			}
			out = append(out, ChannelCount{Channel: ch, Subscribers: len(set), Users: len(sh.presence[ch])})
		}
		sh.mu.RUnlock()
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Channel < out[j].Channel })
	return out
}

// Subscriptions returns the number of local subscriptions and of channels
// that have any.
func (h *Hub) Subscriptions() (subscriptions, channels int) {
	for i := range h.shards {
		sh := &h.shards[i]
		sh.mu.RLock()
		channels += len(sh.subs)
		for _, set := range sh.subs {
			subscriptions += len(set)
		}
		sh.mu.RUnlock()
	}
	return subscriptions, channels
}
