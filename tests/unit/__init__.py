"""The unit layer: hooknb's server-less modules tested without a server, a network or a kernel."""
