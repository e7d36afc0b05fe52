package broker

// Die stops the heartbeat and writer as a crash would: nothing is cleaned up.
func (p *RedisPresence) Die() {
	p.cancel()
	<-p.done
}
