"""The XMPP client layer: the shared loop, connections, passwords, PubSub requests and typed events."""
