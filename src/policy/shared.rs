//! RFC 9111 shared-cache rules.
